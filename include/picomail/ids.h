/*
 * ids.h - identifiers for picos, channels (ECIs) and events.
 *
 * An id is 25 lower-case characters [a-z0-9] starting with "c", in the
 * manner of the reference's cuid: a millisecond timestamp, a process-wide
 * counter and random characters from getrandom(2), so ids are unguessable
 * (an ECI is a capability) and sort roughly by creation.  Lower case only,
 * because mail systems may fold the case of an address.  Thread-safe.
 */
#ifndef PICOMAIL_IDS_H
#define PICOMAIL_IDS_H

#include <stdbool.h>
#include <stddef.h>

#define ID_LEN 25
#define ID_BUFSIZE (ID_LEN + 1)

/* id_new - a fresh id in BUF (ID_BUFSIZE bytes) */
void id_new(char *buf);
/* id_valid_eci - whether S looks like a channel id we could have made or a
 * name a user may give (1-64 of [a-z0-9_-], case-insensitive) */
bool id_valid_eci(const char *s);

#endif
