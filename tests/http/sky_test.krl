ruleset picomail.test.http {
  meta {
    name "sky http test"
    description <<What tests/http/http.py asks of the Sky API: attributes
echoed back, special directives, values for each response format, a
counter for concurrent clients, and runtime errors.>>
    shares echo, text, page, nothing, boom, count, headers
  }
  global {
    echo = function(a, b) {
      {"a": a, "b": b}
    }
    text = function() {
      "plain <b>text</b>"
    }
    page = function() {
      "<p>Hello</p>"
    }
    nothing = function() {
      null
    }
    boom = function() {
      f = null;
      f(1)
    }
    count = function() {
      ent:count.defaultsTo(0)
    }
    headers = function(_headers) {
      _headers
    }
  }
  rule attrs {
    select when test attrs
    send_directive("attrs", {"attrs": event:attrs})
  }
  rule count {
    select when test count
    send_directive("counted")
    fired {
      ent:count := ent:count.defaultsTo(0) + 1
    }
  }
  rule cookie {
    select when test cookie
    every {
      send_directive("_cookie", {"cookie": "session=abc; Path=/"})
      send_directive("_cookie", {"cookie": "theme=dark"})
    }
  }
  rule redirect {
    select when test redirect
    send_directive("_redirect", {"url": "https://example.org/next"})
  }
  rule fail {
    select when test fail
    pre {
      f = null
    }
    send_directive("never", {"x": f(1)})
  }
}
