/*
 * engine_event.c - processing one event or one query for a pico.
 *
 * See engine.c for the order of things.  The schedule is a queue of
 * (installed ruleset, event) pairs; each ruleset runs its salient rules in
 * declaration order with the event-expression state read from and written
 * back to the store.  A rule body runs under a savepoint: a runtime error
 * rolls that rule back and ends the event with the error (the effects of
 * rules that completed before it stay, as in the reference engine).
 *
 * A batch of events is one store transaction.  Within it, entity
 * variables live in the engine's batch cache (engine_cache.c) and reach
 * the store at the commit; a rule that can write nothing else
 * (krl_rule_ents_only) needs no store savepoint, the cache undoing its
 * writes should it fail.  The events' log rows are written together at
 * the end of the batch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "picomail/buf.h"
#include "picomail/ids.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/policy.h"

#include "engine_internal.h"

void
engine_forget_ents(struct txn *t)
{
    for (size_t i = 0; i < t->n_seen; i++) {
        free(t->seen[i].rid);
        free(t->seen[i].name);
        kval_free(t->seen[i].value);
    }
    t->n_seen = 0;
}

void
engine_txn_release(struct txn *t)
{
    engine_forget_ents(t);
    for (size_t i = 0; !t->installs_borrowed && i < t->n_installs; i++) {
        free(t->installs[i].rid);
        kval_free(t->installs[i].config);
    }
    if (!t->installs_borrowed)
        free(t->installs);
    for (size_t i = t->head; i < t->n; i++)
        kval_free(t->sched[i].event);
    free(t->sched);
    kval_free(t->deferred);
    if (!t->vm_borrowed)
        krl_vm_free(t->vm);
    memset(t, 0, sizeof *t);
}

kval
engine_load_installs(struct txn *t)
{
    if (engine_installs_cached(t->e, t->pico_id, &t->installs,
                               &t->n_installs)) {
        t->installs_borrowed = true;
        return kval_null();
    }
    kval list;
    int rc = store_install_list(t->e->st, t->pico_id, &list);
    if (rc != STORE_OK)
        return engine_store_error(t->e, rc);
    size_t n = kval_array_len(&list);
    t->installs = xcalloc(n + 1, sizeof *t->installs);
    kval result = kval_null();
    for (size_t i = 0; i < n; i++) {
        const kval *m = kval_array_get(&list, i);
        struct inst_ref *r = &t->installs[t->n_installs];
        r->rid = xstrdup(kval_str_ptr(kval_map_get_str(m, "rid")));
        const kval *config = kval_map_get_str(m, "config");
        r->config = config ? kval_copy(config) : kval_null();
        t->n_installs++;
        kval err = kval_null();
        r->c = engine_compiled(t->e,
                               kval_str_ptr(kval_map_get_str(m, "hash")),
                               &err);
        if (r->c == NULL) {
            result = err;
            break;
        }
        r->inst = engine_instance(t, r->c, &r->config, &err);
        if (r->inst == NULL) {
            result = err;
            break;
        }
    }
    kval_free(list);
    if (!kval_is_error(&result) &&
        engine_installs_keep(t->e, t->pico_id, t->installs, t->n_installs))
        t->installs_borrowed = true;
    return result;
}

static void
schedule_push(struct txn *t, size_t ruleset, kval event,
              const struct sel_event *sel)
{
    if (t->n == t->cap) {
        /* drop what was consumed before growing */
        if (t->head > 0) {
            memmove(t->sched, t->sched + t->head,
                    (t->n - t->head) * sizeof *t->sched);
            t->n -= t->head;
            t->head = 0;
        }
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 16;
            t->sched = xreallocarray(t->sched, t->cap, sizeof *t->sched);
        }
    }
    t->sched[t->n].ruleset = ruleset;
    t->sched[t->n].event = event;
    t->sched[t->n].sel = *sel;
    t->n++;
}

/* word - S as a string value, shared with the last event's when equal */
static kval
word(kval *last, const char *s)
{
    if (kval_kind(last) != KV_STRING || strcmp(kval_str_ptr(last), s) != 0) {
        kval_free(*last);
        *last = kval_cstr(s);
    }
    return kval_copy(last);
}

static kval
make_event(struct engine *e, const char *domain, const char *type,
           const kval *attrs, int64_t time_ms, struct sel_event *sel)
{
    kval *w = e->words;
    kval d = word(&e->last_domain, domain), n = word(&e->last_type, type);
    kval a = attrs && kval_kind(attrs) == KV_MAP ? kval_copy(attrs)
                                                 : kval_map();
    /* borrowed from the values the event holds */
    *sel = (struct sel_event){kval_str_ptr(&d), kval_str_ptr(&n), NULL,
                              time_ms};
    kval ev = kval_map();
    ev = kval_map_put(ev, kval_copy(&w[EW_DOMAIN]), d);
    ev = kval_map_put(ev, kval_copy(&w[EW_NAME]), n);
    ev = kval_map_put(ev, kval_copy(&w[EW_ATTRS]), a);
    ev = kval_map_put(ev, kval_copy(&w[EW_TIME]),
                      kval_number((double)time_ms));
    sel->attrs = kval_map_get_str(&ev, "attrs");
    return ev;
}

void
engine_schedule_event(struct txn *t, const char *domain, const char *type,
                      const kval *attrs, const char *for_rid, int64_t time_ms)
{
    struct sel_event sel;       /* borrowed from the event, which each
                                   schedule item holds */
    kval ev = make_event(t->e, domain, type, attrs, time_ms, &sel);
    for (size_t i = 0; i < t->n_installs; i++)
        if (for_rid == NULL || strcmp(for_rid, t->installs[i].rid) == 0)
            schedule_push(t, i, kval_copy(&ev), &sel);
    kval_free(ev);
}

/* Context for a `where` clause of one rule. */
struct where_ctx {
    struct krl_instance *inst;
    struct krl_vm *vm;
    const struct ast_rule *rule;
};

static int
eval_where(void *ctx, const struct ast_ee *prim, const kval *captures,
           kval *err)
{
    struct where_ctx *w = ctx;
    return krl_instance_where(w->inst, w->vm, w->rule, prim, captures, err);
}

/* select_rule - whether rule I of R is selected by the current event;
 * *BINDINGS gets the setting variables.  -1 with *ERR on an error. */
static int
select_rule(struct txn *t, struct inst_ref *r, size_t i, kval *bindings,
            kval *err)
{
    const struct ast_rule *rule = &krl_ruleset_ast(r->c->rs)->rules[i];
    const char *domain = t->sel.domain, *type = t->sel.type;
    *bindings = kval_null();
    if (rule->inactive)
        return 0;
    if (rule->select_where != NULL)
        return krl_rule_select_where(r->inst, t->vm, rule, err);
    struct sel_machine *m = r->c->machines[i];
    if (m == NULL || !sel_salient(m, domain, type))
        return 0;
    if (r->c->within_ms[i] == -2) {
        int64_t ms;
        if (krl_rule_within_ms(r->inst, t->vm, rule, &ms, err) != 0)
            return -1;
        r->c->within_ms[i] = ms;
    }
    /* a lone primitive has no state between events: nothing to read or
       write (most rules are like this), nor any state value to build */
    bool stateless = rule->select_when->kind == AST_EE_PRIM;
    struct where_ctx w = {r->inst, t->vm, rule};
    if (stateless && sel_is_lone(m))
        return sel_match_lone(m, &t->sel, eval_where, &w, bindings, err);
    kval state;
    int rc = stateless ? STORE_NOTFOUND
                       : store_ee_get(t->e->st, t->pico_id, r->rid,
                                      rule->name.s, r->c->hash, &state);
    if (rc == STORE_NOTFOUND) {
        if (kval_is_null(&r->c->initial[i]))
            r->c->initial[i] = sel_initial(m);
        state = kval_copy(&r->c->initial[i]);
    } else if (rc != STORE_OK) {
        *err = engine_store_error(t->e, rc);
        return -1;
    }
    kval next = kval_null();
    kval before = kval_copy(&state);
    int matched = sel_step(m, state, &t->sel, r->c->within_ms[i], eval_where,
                           &w, &next, bindings, err);
    if (matched < 0) {
        kval_free(before);
        kval_free(next);
        return -1;
    }
    /* most events leave a simple rule's state as it was: no write then */
    rc = stateless || kval_equal(&before, &next)
             ? STORE_OK
             : store_ee_put(t->e->st, t->pico_id, r->rid, rule->name.s,
                            r->c->hash, &next);
    kval_free(before);
    kval_free(next);
    if (rc != STORE_OK) {
        kval_free(*bindings);
        *bindings = kval_null();
        *err = engine_store_error(t->e, rc);
        return -1;
    }
    return matched;
}

/* run_ruleset - one schedule item: the ruleset's salient rules in order;
 * -1 with *ERR when a rule fails */
static int
run_ruleset(struct txn *t, struct sched_item *item, kval *err)
{
    struct inst_ref *r = &t->installs[item->ruleset];
    const struct ast_ruleset *ast = krl_ruleset_ast(r->c->rs);
    t->event = &item->event;
    t->sel = item->sel;
    t->cur_rid = r->rid;
    t->cur_compiled = r->c;
    for (size_t i = 0; i < ast->n_rules; i++) {
        kval bindings;
        int sel = select_rule(t, r, i, &bindings, err);
        if (sel < 0)
            return -1;
        if (sel == 0)
            continue;
        const struct ast_rule *rule = &ast->rules[i];
        t->cur_rule = rule->name.s;
        krl_vm_set_context(t->vm, r->rid, rule->name.s, t->eid);
        /* a rule that can write nothing but entity variables (kept in
           the batch's cache, undone there on failure) needs no savepoint */
        bool guarded = !(engine_ents_active(t->e) &&
                         krl_rule_ents_only(r->c->rs, i));
        int rc = guarded ? store_savepoint(t->e->st) : STORE_OK;
        if (rc != STORE_OK) {
            kval_free(bindings);
            *err = engine_store_error(t->e, rc);
            return -1;
        }
        engine_ents_rule_begin(t->e, !guarded);
        enum krl_rule_end end = krl_rule_run(r->inst, t->vm, rule, &bindings,
                                             err);
        kval_free(bindings);
        t->cur_rule = NULL;
        if (engine_ents_rule_end(t->e, end == KRL_RULE_ERROR))
            guarded = true;     /* it opened one after all */
        if (end == KRL_RULE_ERROR) {
            if (guarded)
                store_savepoint_rollback(t->e->st);
            engine_forget_ents(t);      /* its writes are undone */
            return -1;
        }
        rc = guarded ? store_savepoint_release(t->e->st) : STORE_OK;
        if (rc != STORE_OK) {
            *err = engine_store_error(t->e, rc);
            return -1;
        }
        if (end == KRL_RULE_LAST)
            break;
    }
    return 0;
}

/* copy_id - SRC into DST of SIZE bytes, cut to fit (snprintf's "%s"
 * without its cost, twice an event) */
static void
copy_id(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* check_channel - the channel ECI of T, allowed to take the event or query
 * A:B by its policy; fills T->pico_id */
static kval
check_channel(struct txn *t, const char *eci, enum policy_kind kind,
              const char *a, const char *b, const char *from_pico)
{
    struct store_channel scratch;
    const struct store_channel *chp;
    int rc = engine_channel_cached(t->e, eci, &chp, &scratch);
    if (rc == STORE_NOTFOUND)
        return kval_error("Error: ECI not found %s", eci);
    if (rc != STORE_OK)
        return engine_store_error(t->e, rc);
    const struct store_channel ch = *chp;
    kval result = kval_null();
    /* a family channel serves its one pico only; callers from outside
       (mail, HTTP, the command line) are no pico at all */
    if (ch.family_pico_id != NULL &&
        (from_pico == NULL || strcmp(ch.family_pico_id, from_pico) != 0))
        result = kval_error("Error: This is a family channel and only the "
                            "owner can use it.");
    else if (!engine_channel_allows(t->e, chp, (int)kind, a, b)) {
        result = policy_check(kind == POLICY_EVENT ? &ch.event_policy
                                                   : &ch.query_policy,
                              kind, a, b);
        if (kval_is_null(&result))
            engine_channel_allowed(t->e, chp, (int)kind, a, b);
    }
    copy_id(t->pico_id, sizeof t->pico_id, ch.pico_id);
    copy_id(t->eci, sizeof t->eci, ch.eci);
    if (chp == &scratch)
        store_channel_release(&scratch);
    return result;
}

static bool
blank(const char *s)
{
    if (s == NULL)
        return true;
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

/* event_result - {eid, directives} as the reference returns them */
static kval
event_result(struct txn *t)
{
    kval *w = t->e->words;
    kval r = kval_map_put(kval_map(), kval_copy(&w[EW_EID]),
                          kval_cstr(t->eid));
    return kval_map_put(r, kval_copy(&w[EW_DIRECTIVES]),
                        kval_copy(krl_vm_directives(t->vm)));
}

/* log_directives - the directives as the log keeps them, as JSON: name
 * and options (rid, rule and eid are in the log row already); written
 * straight from the directive values */
static void
log_directives(const kval *result, struct buf *out)
{
    const kval *ds = kval_map_get_str(result, "directives");
    buf_addc(out, '[');
    for (size_t i = 0; ds != NULL && i < kval_array_len(ds); i++) {
        const kval *d = kval_array_get(ds, i);
        const kval *name = kval_map_get_str(d, "name");
        const kval *opts = kval_map_get_str(d, "options");
        buf_adds(out, i ? ",{\"name\":" : "{\"name\":");
        if (name == NULL || json_encode(name, JSON_KRL, 0, out) != 0)
            buf_adds(out, "null");
        buf_adds(out, ",\"options\":");
        if (opts == NULL || json_encode(opts, JSON_KRL, 0, out) != 0)
            buf_adds(out, "{}");
        buf_addc(out, '}');
    }
    buf_addc(out, ']');
}

/* log_event - the event's log row, written with the batch's others by
 * write_logs; DOMAIN, TYPE and ATTRS are borrowed from the request (alive
 * for the batch) */
static void
log_event(struct txn *t, const char *domain, const char *type,
          const kval *attrs, const kval *result)
{
    struct engine *e = t->e;
    if (e->n_logs == e->cap_logs) {
        e->cap_logs = e->cap_logs ? 2 * e->cap_logs : 64;
        e->logs = xreallocarray(e->logs, e->cap_logs, sizeof *e->logs);
    }
    struct pending_log *p = &e->logs[e->n_logs++];
    copy_id(p->eid, sizeof p->eid, t->eid);
    copy_id(p->pico_id, sizeof p->pico_id, t->pico_id);
    p->result_json = NULL;
    p->error = NULL;
    if (kval_is_error(result)) {
        p->error = xstrdup(kval_error_msg(result));
    } else {
        struct buf logged;
        buf_init(&logged);
        log_directives(result, &logged);
        p->result_json = buf_take(&logged, NULL);
    }
    p->le = (struct store_log_entry){
        .time_ms = engine_now_ms(),
        .kind = t->in_query ? "query" : "event",
        .domain = domain,
        .name = type,
        /* an event without attributes logs none */
        .attrs = attrs != NULL && kval_map_len(attrs) > 0 ? attrs : NULL,
        .result_json = p->result_json,
        .error = p->error,
    };
}

/* write_logs - the batch's log rows into the store (as each event's own
 * store_log_add did, a row that cannot be written is left out) */
static void
write_logs(struct engine *e)
{
    if (e->n_logs == 0)
        return;
    struct store_log_entry *v = xreallocarray(NULL, e->n_logs, sizeof *v);
    for (size_t i = 0; i < e->n_logs; i++) {
        v[i] = e->logs[i].le;
        v[i].eid = e->logs[i].eid;
        v[i].pico_id = e->logs[i].pico_id;
    }
    store_log_add_many(e->st, v, e->n_logs);
    free(v);
}

/* drop_logs - forget the batch's log rows */
static void
drop_logs(struct engine *e)
{
    for (size_t i = 0; i < e->n_logs; i++) {
        free(e->logs[i].result_json);
        free(e->logs[i].error);
    }
    e->n_logs = 0;
}

static kval batch_at_depth(struct engine *e,
                           const struct engine_event_req *reqs, size_t n,
                           int depth);

/* DEFERRED_MAX_DEPTH - how many rounds of pico-to-pico ctx:event one
 * event may start: a loop of picos sending to each other ends there */
#define DEFERRED_MAX_DEPTH 16

/* send_deferred - events that rules sent to other picos with ctx:event,
 * processed after the sending event committed (fire and forget), all in
 * one batch; consumes DEFERRED */
static void
send_deferred(struct engine *e, kval deferred, int depth)
{
    size_t n = kval_array_len(&deferred);
    if (n > 0 && depth >= DEFERRED_MAX_DEPTH) {
        fprintf(stderr, "picomail: dropped %zu ctx:event sends after %d "
                "rounds (a loop of picos?)\n", n, depth);
        n = 0;
    }
    if (n > 0) {
        struct engine_event_req *reqs = xcalloc(n, sizeof *reqs);
        for (size_t i = 0; i < n; i++) {
            const kval *d = kval_array_get(&deferred, i);
            reqs[i].eci = kval_str_ptr(kval_map_get_str(d, "eci"));
            reqs[i].domain = kval_str_ptr(kval_map_get_str(d, "domain"));
            reqs[i].type = kval_str_ptr(kval_map_get_str(d, "name"));
            reqs[i].attrs = kval_map_get_str(d, "attrs");
            const kval *from = kval_map_get_str(d, "from");
            reqs[i].from_pico = from ? kval_str_ptr(from) : NULL;
        }
        kval_free(batch_at_depth(e, reqs, n, depth + 1));
        free(reqs);
    }
    kval_free(deferred);
}

/* event_in_txn - one event inside the open transaction; the events it
 * sends to other picos are appended to *DEFERRED */
static kval
event_in_txn(struct engine *e, const struct engine_event_req *req,
             kval *deferred)
{
    if (blank(req->eci))
        return kval_error("Error: missing event.eci");
    if (blank(req->domain))
        return kval_error("Error: missing event.domain");
    if (blank(req->type))
        return kval_error("Error: missing event.name");
    const kval *attrs = req->attrs;
    if (attrs != NULL && !kval_is_null(attrs) && kval_kind(attrs) != KV_MAP)
        return kval_error("Error: event.attrs must be a map");
    struct txn t;
    memset(&t, 0, sizeof t);
    t.e = e;
    t.deferred = kval_array();
    if (req->eid != NULL && strlen(req->eid) < sizeof t.eid)
        memcpy(t.eid, req->eid, strlen(req->eid) + 1);
    else
        id_new(t.eid);
    if (e->vm == NULL)
        e->vm = krl_vm_new(&e->lim);
    krl_vm_reset(e->vm);
    t.vm = e->vm;
    t.vm_borrowed = true;
    krl_vm_set_host(t.vm, &engine_krl_host, &t);
    kval result = kval_null();
    bool claimed = false;
    if (req->inbox_id > 0) {
        /* claim the entry first: one that another engine (or an earlier
           run) processed must not raise its event again */
        int rc = store_inbox_done(e->st, req->inbox_id);
        if (rc == STORE_NOTFOUND)
            result = kval_error("Error: inbox entry %lld was processed "
                                "already", (long long)req->inbox_id);
        else if (rc != STORE_OK)
            result = engine_store_error(e, rc);
        claimed = rc == STORE_OK;
    }
    if (!kval_is_error(&result))
        result = check_channel(&t, req->eci, POLICY_EVENT, req->domain,
                               req->type, req->from_pico);
    if (!kval_is_error(&result))
        result = engine_load_installs(&t);
    if (!kval_is_error(&result)) {
        engine_schedule_event(&t, req->domain, req->type, attrs, NULL,
                              req->time_ms > 0 ? req->time_ms
                                               : engine_now_ms());
        kval err = kval_null();
        while (t.head < t.n) {
            struct sched_item item = t.sched[t.head++];
            int r = run_ruleset(&t, &item, &err);
            kval_free(item.event);
            t.event = NULL;
            if (r < 0) {
                result = err;
                break;
            }
        }
        if (!kval_is_error(&result))
            result = event_result(&t);
        engine_outbound_directives(&t, attrs, &result);
    }
    if (t.pico_id[0] != '\0')
        log_event(&t, req->domain, req->type, attrs, &result);
    if (claimed && kval_is_error(&result))
        store_inbox_failed(e->st, req->inbox_id, kval_error_msg(&result));
    for (size_t i = 0; i < kval_array_len(&t.deferred); i++)
        *deferred = kval_array_append(*deferred,
                                      kval_copy(kval_array_get(&t.deferred,
                                                               i)));
    engine_txn_release(&t);
    return result;
}

kval
engine_event_batch(struct engine *e, const struct engine_event_req *reqs,
                   size_t n)
{
    return batch_at_depth(e, reqs, n, 0);
}

static kval
batch_at_depth(struct engine *e, const struct engine_event_req *reqs,
               size_t n, int depth)
{
    int rc = store_begin(e->st);
    if (rc != STORE_OK)
        return engine_store_error(e, rc);
    engine_cache_sync(e);
    engine_ents_begin(e);
    kval results = kval_array_sized(n);
    kval deferred = kval_array();
    for (size_t i = 0; i < n; i++)
        results = kval_array_append(results,
                                    event_in_txn(e, &reqs[i], &deferred));
    write_logs(e);
    drop_logs(e);
    rc = engine_ents_flush(e);
    if (rc == STORE_OK)
        rc = store_commit(e->st);
    engine_ents_end(e);
    if (rc != STORE_OK) {
        kval err = engine_store_error(e, rc);
        store_rollback(e->st);
        kval_free(results);
        kval_free(deferred);
        return err;
    }
    send_deferred(e, deferred, depth);
    return results;
}

kval
engine_event(struct engine *e, const char *eci, const char *domain,
             const char *type, const kval *attrs, int64_t time_ms)
{
    struct engine_event_req req = {eci, domain, type, attrs, time_ms, NULL,
                                   0, NULL};
    kval results = engine_event_batch(e, &req, 1);
    if (kval_is_error(&results))
        return results;
    kval r = kval_copy(kval_array_get(&results, 0));
    kval_free(results);
    return r;
}

kval
engine_query_in(struct txn *t, const char *rid, const char *name,
                const kval *args)
{
    for (size_t i = 0; i < t->n_installs; i++) {
        if (strcmp(t->installs[i].rid, rid) != 0)
            continue;
        const char *saved = t->cur_rid;
        struct compiled *saved_c = t->cur_compiled;
        t->cur_rid = t->installs[i].rid;
        t->cur_compiled = t->installs[i].c;
        kval v = krl_instance_query(t->installs[i].inst, t->vm, name, args);
        t->cur_rid = saved;
        t->cur_compiled = saved_c;
        return v;
    }
    return kval_error("Error: Pico doesn't have %s installed.", rid);
}

kval
engine_query(struct engine *e, const char *eci, const char *rid,
             const char *name, const kval *args)
{
    if (blank(eci))
        return kval_error("Error: missing query.eci");
    if (blank(rid))
        return kval_error("Error: missing query.rid");
    if (blank(name))
        return kval_error("Error: missing query.name");
    if (args != NULL && !kval_is_null(args) && kval_kind(args) != KV_MAP)
        return kval_error("Error: query.args must be a map");
    struct txn t;
    memset(&t, 0, sizeof t);
    t.e = e;
    t.in_query = true;
    t.deferred = kval_array();
    id_new(t.eid);
    t.vm = krl_vm_new(&e->lim);
    krl_vm_set_host(t.vm, &engine_krl_host, &t);
    /* a read transaction gives the query one consistent view */
    int rc = store_begin_read(e->st);
    if (rc == STORE_OK)
        engine_cache_sync(e);
    kval result = rc == STORE_OK
                      ? check_channel(&t, eci, POLICY_QUERY, rid, name, NULL)
                      : engine_store_error(e, rc);
    if (!kval_is_error(&result))
        result = engine_load_installs(&t);
    if (!kval_is_error(&result))
        result = engine_query_in(&t, rid, name, args);
    if (rc == STORE_OK)
        store_rollback(e->st);
    engine_txn_release(&t);
    return result;
}
