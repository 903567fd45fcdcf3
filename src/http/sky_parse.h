/*
 * sky_parse.h - the request-side text of the Sky APIs, without I/O
 * (private to src/http/): percent-decoding, query strings and forms as
 * Express reads them, request paths to routes, and the body to
 * attributes.
 *
 * Results are new kval references; errors are KV_ERROR values whose
 * message is meant for the client (they become 400 answers).
 */
#ifndef PICOMAIL_SKY_PARSE_H
#define PICOMAIL_SKY_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "picomail/buf.h"
#include "picomail/value.h"

/* at most this many name=value pairs are read from a query string or a
   form (qs's and querystring's parameterLimit) */
#define SKY_MAX_PARAMS 1000
/* qs's depth: a[b][c][d][e][f][g] keeps "[g]" as one literal key */
#define SKY_QS_DEPTH 5
/* qs's arrayLimit: a[20]=x makes an array, a[21]=x a map */
#define SKY_QS_ARRAY_LIMIT 20

/* sky_pct_decode - append LEN bytes of S, percent-decoded, to OUT; PLUS
 * turns '+' into a space (query strings and forms, not paths).  -1 for a
 * malformed escape or a result that is not UTF-8 (decodeURIComponent's
 * URIError). */
int sky_pct_decode(const char *s, size_t len, bool plus, struct buf *out);

/* sky_parse_qs - a query string (without the '?') as Express's
 * "extended" parser (the qs library) reads it: a[b]=c nests, a[]=x and
 * a[0]=x make arrays, a repeated name makes an array */
kval sky_parse_qs(const char *s, size_t len);

/* sky_parse_form - an application/x-www-form-urlencoded body as
 * Express's urlencoded({extended: false}) reads it: flat names, a
 * repeated name makes an array */
kval sky_parse_form(const char *s, size_t len);

/* The routes. */
enum sky_route {
    SKY_R_NONE = 0,
    SKY_R_SKY_EVENT,            /* /sky/event/ECI/EID/DOMAIN/TYPE */
    SKY_R_SKY_CLOUD,            /* /sky/cloud/ECI/RID/FUNCTION[.ext] */
    SKY_R_EVENT,                /* /c/ECI/event/DOMAIN/TYPE */
    SKY_R_EVENT_WAIT,           /* /c/ECI/event-wait/DOMAIN/TYPE */
    SKY_R_QUERY,                /* /c/ECI/query/RID/NAME[.ext] */
    SKY_R_EVENT_QUERY,          /* /c/ECI/event/DOMAIN/TYPE/query/RID/NAME */
    SKY_R_METRICS               /* /metrics */
};

/* How a query's value is sent. */
enum sky_format { SKY_F_JSON = 0, SKY_F_TXT, SKY_F_HTML };

#define SKY_MAX_SEGS 8

/* A request path matched to a route; the strings are decoded and owned. */
struct sky_path {
    enum sky_route route;
    char *eci;
    char *eid;                  /* SKY_R_SKY_EVENT */
    char *domain;
    char *type;
    char *rid;
    char *name;                 /* the function, without its extension */
    enum sky_format format;
    char *segs[SKY_MAX_SEGS];   /* private: the decoded segments */
    size_t n_segs;              /* private */
};

/* sky_path_parse - match PATH (LEN bytes, raw, without the query string)
 * to a route: 0, or the HTTP status of the problem (400: malformed, 404:
 * no such route) with a message in ERR.  Release P with sky_path_release
 * either way. */
int sky_path_parse(const char *path, size_t len, struct sky_path *p,
                   char *err, size_t errlen);
void sky_path_release(struct sky_path *p);

/* sky_body_attrs - the attributes a body of LEN bytes with CONTENT_TYPE
 * (NULL: none) gives: a map ({} when the type is not one the reference
 * reads), or an error for bad JSON or a JSON body that is not an object */
kval sky_body_attrs(const char *content_type, const char *body, size_t len);

/* sky_headers_put - add header NAME: VALUE to the map HEADERS the way
 * Node.js does in req.headers: the name lower-cased; a repeated header
 * joined with ", " ("; " for cookie), kept as the first for the headers
 * Node keeps once, a list for set-cookie.  Consumes HEADERS. */
kval sky_headers_put(kval headers, const char *name, const char *value);

/* sky_merge_attrs - QUERY overlaid by BODY, then "_headers": HEADERS
 * (all consumed), as Object.assign({}, query, body, {_headers}) */
kval sky_merge_attrs(kval query, kval body, kval headers);

#endif
