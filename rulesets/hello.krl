ruleset picomail.hello {
  meta {
    name "hello"
    description <<The demo pico's ruleset: answers hello events, counts them,
and keeps the last mail it was sent.>>
    shares greeting, hellos, last_mail
  }
  global {
    greeting = function(name = "world") {
      <<Hello #{name}!>>
    }
    hellos = function() {
      ent:count.defaultsTo(0)
    }
    last_mail = function() {
      ent:last_mail
    }
  }
  rule hello {
    select when echo hello name re#(.+)# setting(name)
    send_directive("say", {"something": greeting(name)})
    fired {
      ent:count := hellos() + 1
    }
  }
  rule mail {
    select when mail received
    pre {
      mail = event:attrs.filter(function(v, k) {
        ["from", "from_name", "subject", "date", "text"] >< k
      })
    }
    send_directive("received", {"subject": mail{"subject"}})
    fired {
      ent:last_mail := mail
    }
  }
}
