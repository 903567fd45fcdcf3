ruleset test.mail.inbox {
  meta {
    name "inbox"
    description <<Test ruleset for the mail tests: keeps what mail events carry.>>
    shares last, received, seen, attachment
  }
  global {
    last = function() { ent:last }
    received = function() { ent:received.defaultsTo(0) }
    seen = function() { ent:seen.defaultsTo([]) }
    attachment = function(sha256) { mail:attachment(sha256) }
  }
  rule on_mail {
    select when mail received
    pre {
      attrs = event:attrs
    }
    send_directive("stored", {"subject": attrs{"subject"}})
    fired {
      ent:last := attrs;
      ent:received := received() + 1;
      ent:seen := seen().append(attrs{"subject"})
    }
  }
  rule on_other {
    select when test ping
    fired {
      ent:last := event:attrs;
      ent:received := received() + 1;
      ent:seen := seen().append(event:attrs{"subject"})
    }
  }
}
