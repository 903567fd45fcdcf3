/*
 * web.h - picomaild's Sky Event / Sky Cloud listener: src/http/'s server
 * with the daemon's dispatcher and query engines behind it (private to
 * src/daemon/).
 */
#ifndef PICOMAIL_DAEMON_WEB_H
#define PICOMAIL_DAEMON_WEB_H

#include <stddef.h>

#include "daemon.h"
#include "../http/sky_http.h"

struct web;

/* web_start - listen on LISTEN ("host:port"); NULL with a message in
 * ERR */
struct web *web_start(const char *listen, size_t max_body,
                      struct dispatch *dispatch, char *err, size_t errlen);
/* web_stop - stop serving (waits for requests in progress); NULL ok */
void web_stop(struct web *w);

#endif
