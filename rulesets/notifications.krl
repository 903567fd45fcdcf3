ruleset picomail.notifications {
  meta {
    name "notifications"
    description <<
The CloudOS notification service for picomail: applications raise
notification:status with application, subject, description, priority
(-2..2) and id; the pico's settings decide whether it goes out by SMS,
email, only into the log, or nowhere.  With no address or phone number
set, notifications go to the pico's parent.  Every one is kept in a
timeline.  See rulesets/README.
>>
    author "picomail"
    shares settings, timeline, timelineItems
  }
  global {
    default_levels = {"2": "sms", "1": "email", "0": "logonly",
                      "-1": "nothing", "-2": "nothing"}
    timeline_max = 100
    settings = function() {
      ent:settings.defaultsTo({})
    }
    level_for = function(application, priority) {
      s = settings();
      per_app = s{["applications", application, priority.as("String")]};
      per_app || s{["levels", priority.as("String")]}
               || default_levels{priority.as("String")}
    }
    timeline = function() {
      ent:timeline.defaultsTo([])
    }
    timelineItems = function(limit = 10, offset = 0) {
      items = timeline().reverse();
      n = math:int(limit) > 25 => 25 | math:int(limit);
      start = math:int(offset);
      end = start + n > items.length() => items.length() | start + n;
      end > start => items.slice(start, end - 1) | []
    }
    kept = function(items) {
      n = items.length();
      n > timeline_max => items.slice(n - timeline_max, n - 1) | items
    }
    clamp = function(p) {
      q = p.as("Number");
      q.isnull() => 0 | q > 2 => 2 | q < -2 => -2 | math:int(q)
    }
  }

  rule settings_changed {
    select when notification settings
    pre {
      attrs = event:attrs
      old = settings()
      merged = old.put(attrs.filter(function(v, k) {
        ["email", "phone", "name", "levels", "applications"] >< k
      }))
    }
    send_directive("notification_settings", merged)
    fired {
      ent:settings := merged
    }
  }

  rule status {
    select when notification status
    pre {
      application = event:attrs{"application"} || "an unknown application"
      subject = event:attrs{"subject"} || ""
      description = event:attrs{"description"} || ""
      priority = clamp(event:attrs{"priority"})
      id = event:attrs{"id"} || random:uuid()
      s = settings()
      has_contact = s{"email"} || s{"phone"}
      level = has_contact => level_for(application, priority) | "parent"
      note = {"id": id, "application": application, "subject": subject,
              "description": description, "priority": priority,
              "level": level, "time": time:now()}
    }
    send_directive("notification", note)
    fired {
      raise notification event "deliver" attributes note if has_contact;
      raise notification event "to_parent" attributes note if not has_contact;
      ent:timeline := kept(timeline().append(note))
    }
  }

  rule deliver_sms {
    select when notification deliver level re#^sms$#
    pre {
      s = settings()
      text = <<#{event:attrs{"subject"}} (#{event:attrs{"application"}}): #{event:attrs{"description"}}>>
    }
    if s{"phone"} then sms:send(s{"phone"}, text.substr(0, 1600))
  }

  rule deliver_sms_without_phone {
    select when notification deliver level re#^sms$#
    pre {
      s = settings()
    }
    if (not s{"phone"}) && s{"email"} then
      email:send(s{"email"},
                 <<#{event:attrs{"application"}}: #{event:attrs{"subject"}}>>,
                 event:attrs{"description"})
  }

  rule deliver_email {
    select when notification deliver level re#^email$#
    pre {
      s = settings()
    }
    if s{"email"} then
      email:send(s{"email"},
                 <<#{event:attrs{"application"}}: #{event:attrs{"subject"}}>>,
                 event:attrs{"description"})
  }

  rule to_parent {
    select when notification to_parent
    pre {
      parent = ctx:parent
      attrs = event:attrs.delete("level").delete("time")
    }
    if parent then
      event:send({"eci": parent, "domain": "notification", "type": "status",
                  "attrs": attrs})
  }
}
