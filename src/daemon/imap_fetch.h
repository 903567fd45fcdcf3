/*
 * imap_fetch.h - the IMAP fetcher of picomaild: mailboxes hosted
 * elsewhere, polled or watched with IDLE, each message raised as an event
 * on a configured channel and then flagged \Seen or moved (DESIGN.md §1,
 * §4).  The imap_* keys of picomail.conf configure it.
 *
 * One thread per configured mailbox, each with its own store connection
 * and IMAP session (libetpan).  A message goes through the same path as
 * an LMTP delivery (mail_accept_rcpt, inbox_prepare, inbox_store), and is
 * flagged or moved only after its entry is committed: a crash in between
 * fetches it again, and the inbox deduplicates it (its queue id is
 * "imap:USER@HOST/FOLDER/UIDVALIDITY/UID"), so nothing is lost or doubled.
 */
#ifndef PICOMAIL_DAEMON_IMAP_FETCH_H
#define PICOMAIL_DAEMON_IMAP_FETCH_H

#include <pthread.h>
#include <stddef.h>

#include "picomail/conf.h"
#include "picomail/inbox.h"

struct imap_fetch_env {           /* borrowed, outlives the fetcher */
    const char *database;         /* open your own store connection(s) */
    pthread_mutex_t *write_gate;  /* pass in store_options.write_gate */
    const char *mail_domain;
    struct inbox_options inbox;   /* for inbox_prepare */
    void (*wake)(void *ctx);      /* call after each commit that added
                                     entries: wakes the rule engine */
    void *wake_ctx;
};

struct imap_fetcher;

/* imap_fetch_start - parse the imap_* keys of CONF, start one thread per
   configured mailbox; NULL with a message in ERR when the configuration is
   wrong; a fetcher with no mailbox configured is valid and does nothing */
struct imap_fetcher *imap_fetch_start(const struct conf *conf,
                                      const struct imap_fetch_env *env,
                                      char *err, size_t errlen);
/* imap_fetch_stop - stop and join the threads, free everything (NULL ok) */
void imap_fetch_stop(struct imap_fetcher *f);

#endif
