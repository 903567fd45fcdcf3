ruleset picomail.hello {
  meta {
    name "hello"
    description <<The demo pico's ruleset: answers hello events and counts them.>>
    shares greeting, hellos
  }
  global {
    greeting = function(name = "world") {
      <<Hello #{name}!>>
    }
    hellos = function() {
      ent:count.defaultsTo(0)
    }
  }
  rule hello {
    select when echo hello name re#(.+)# setting(name)
    send_directive("say", {"something": greeting(name)})
    fired {
      ent:count := hellos() + 1
    }
  }
}
