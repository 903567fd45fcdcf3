/*
 * engine.c - the pico engine: administration of picos, channels, rulesets
 * and installations, and the processing of events and queries.
 *
 * Compiled rulesets are cached by source hash, with their event-expression
 * machines; instances (a ruleset with its global block evaluated) are
 * cached by (hash, configuration).  Nothing is loaded per pico: an event
 * reads the channel, the pico's installations and the states of the rules
 * it touches, all by indexed lookups.
 *
 * Processing one event (krl-language.md §8.3-§8.4): a schedule of
 * (ruleset, event) pairs starts with the event for every installed ruleset
 * in install order; each ruleset runs its salient rules in declaration
 * order, each selected rule's body to completion before the next select;
 * `raise` appends to the schedule (breadth first), `last` ends the
 * ruleset's turn, `error error` clears the schedule and raises
 * system:error to the ruleset alone.  Everything happens inside one store
 * transaction; each rule body runs under a savepoint so a failing rule is
 * rolled back whole, and the event then ends with that error.
 *
 * The KRL host (struct krl_host) is implemented here: ent:, event:, meta:,
 * ctx:, schedule: and the used modules' aliases, plus the stateless
 * modules of modules.h.  engine_host.c holds the module functions.
 */
#include "picomail/engine.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "picomail/buf.h"
#include "picomail/ids.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/policy.h"
#include "picomail/select.h"

#include "engine_internal.h"

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

int64_t
engine_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

kval
engine_store_error(struct engine *e, int rc)
{
    if (rc == STORE_BUSY)
        return kval_error("Error: the database is busy; try again");
    return kval_error("Error: storage: %s", store_errmsg(e->st));
}

static void
sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = '\0';
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */

void
engine_options_default(struct engine_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->database = "./var/picomail.db";
    krl_limits_default(&opt->limits);
    opt->synchronous_full = true;
}

struct engine *
engine_open(const struct engine_options *opt, char *errbuf, size_t errlen)
{
    struct store_options so = {5000, opt->synchronous_full, opt->write_gate};
    struct store *st = store_open(opt->database, &so, errbuf, errlen);
    if (st == NULL)
        return NULL;
    struct engine *e = xcalloc(1, sizeof *e);
    e->st = st;
    e->lim = opt->limits;
    e->mail_domain = xstrdup(opt->mail_domain != NULL ? opt->mail_domain
                                                      : "picos.localhost");
    e->mail_sender = opt->mail_sender != NULL && *opt->mail_sender != '\0'
                         ? xstrdup(opt->mail_sender)
                         : NULL;
    static const char *const words[EW__COUNT] = {
        "domain", "name", "attrs", "time", "eid", "directives", "options"
    };
    for (int i = 0; i < EW__COUNT; i++)
        e->words[i] = kval_cstr(words[i]);
    return e;
}

static void
compiled_free(struct compiled *c)
{
    struct cached_inst *ci = c->insts;
    while (ci != NULL) {
        struct cached_inst *next = ci->next;
        krl_instance_free(ci->inst);
        free(ci->config_json);
        free(ci);
        ci = next;
    }
    arena_free(c->arena);
    krl_ruleset_free(c->rs);
    free(c->hash);
    for (size_t i = 0; c->initial != NULL && i < c->n_rules; i++)
        kval_free(c->initial[i]);
    free(c->initial);
    free(c->machines);
    free(c->within_ms);
    free(c);
}

struct engine *
engine_close(struct engine *e)
{
    if (e == NULL)
        return NULL;
    struct compiled *c = e->compiled;
    while (c != NULL) {
        struct compiled *next = c->next;
        compiled_free(c);
        c = next;
    }
    krl_vm_free(e->vm);
    engine_cache_free(e);
    for (int i = 0; i < EW__COUNT; i++)
        kval_free(e->words[i]);
    store_close(e->st);
    free(e->mail_domain);
    free(e->mail_sender);
    free(e);
    return NULL;
}

struct store *
engine_store(struct engine *e)
{
    return e->st;
}

/* ------------------------------------------------------------------ */
/* Compiled rulesets and instances                                     */

/* compile_source - compile SRC (named FILE) into a cache entry, or NULL
 * with the diagnostics in *ERR */
static struct compiled *
compile_source(const char *file, const char *src, size_t len,
               const char *hash, kval *err)
{
    struct krl_diags d;
    krl_diags_init(&d);
    struct krl_ruleset *rs = krl_ruleset_compile(file, src, len, &d);
    struct compiled *c = NULL;
    if (rs == NULL)
        goto fail;
    c = xcalloc(1, sizeof *c);
    c->rs = rs;
    c->hash = xstrdup(hash);
    c->arena = arena_new();
    const struct ast_ruleset *ast = krl_ruleset_ast(rs);
    c->n_rules = ast->n_rules;
    c->machines = xcalloc(ast->n_rules + 1, sizeof *c->machines);
    c->within_ms = xcalloc(ast->n_rules + 1, sizeof *c->within_ms);
    c->initial = xcalloc(ast->n_rules + 1, sizeof *c->initial);
    for (size_t i = 0; i < ast->n_rules; i++) {
        const struct ast_rule *rule = &ast->rules[i];
        c->within_ms[i] = -2;   /* not evaluated yet */
        if (rule->inactive || rule->select_when == NULL)
            continue;
        c->machines[i] = sel_compile(c->arena, rule, file, &d);
        if (c->machines[i] == NULL)
            goto fail;
    }
    krl_diags_release(&d);
    return c;
fail: {
        struct buf b;
        buf_init(&b);
        krl_diags_format(&d, &b);
        while (b.len > 0 && b.data[b.len - 1] == '\n')
            b.data[--b.len] = '\0';
        *err = kval_error("%s", b.data);
        buf_release(&b);
        krl_diags_release(&d);
        if (c != NULL)
            compiled_free(c);
        else
            krl_ruleset_free(rs);
        return NULL;
    }
}

/* compiled_get - the compiled ruleset for HASH, from the cache or the
 * store */
struct compiled *
engine_compiled(struct engine *e, const char *hash, kval *err)
{
    for (struct compiled *c = e->compiled; c != NULL; c = c->next)
        if (strcmp(c->hash, hash) == 0)
            return c;
    struct store_ruleset r;
    int rc = store_ruleset_get_hash(e->st, hash, &r);
    if (rc != STORE_OK) {
        *err = rc == STORE_NOTFOUND
                   ? kval_error("Error: no ruleset with hash %s", hash)
                   : engine_store_error(e, rc);
        return NULL;
    }
    struct compiled *c = compile_source(r.rid, r.source, strlen(r.source), hash,
                                        err);
    store_ruleset_release(&r);
    if (c == NULL)
        return NULL;
    c->next = e->compiled;
    e->compiled = c;
    return c;
}

/* engine_instance - the instance of C with CONFIG (a map or null); modules
 * it uses are made first, on the pico of TXN.  Instances are shared by
 * every pico with the same ruleset version and configuration (so memory
 * does not grow with the number of picos); a global block that reads
 * pico state (ent:, ctx:) therefore sees the pico that first needed the
 * instance - unlike the reference, which evaluates globals per pico.
 * Functions in the global block read pico state when called, as usual. */
struct krl_instance *
engine_instance(struct txn *t, struct compiled *c, const kval *config,
                kval *err)
{
    char *json = json_to_cstr(config, JSON_DATA);
    if (json == NULL)
        json = xstrdup("null");
    for (struct cached_inst *ci = c->insts; ci != NULL; ci = ci->next)
        if (strcmp(ci->config_json, json) == 0) {
            free(json);
            return ci->inst;
        }
    /* the global block may call used modules: run it as this ruleset */
    const char *saved_rid = t->cur_rid;
    struct compiled *saved_c = t->cur_compiled;
    t->cur_rid = krl_ruleset_rid(c->rs);
    t->cur_compiled = c;
    struct krl_instance *inst = krl_instance_new_hosted(
        c->rs, kval_is_null(config) ? NULL : config, &t->e->lim,
        &engine_krl_host, t, err);
    t->cur_rid = saved_rid;
    t->cur_compiled = saved_c;
    if (inst == NULL) {
        free(json);
        return NULL;
    }
    struct cached_inst *ci = xcalloc(1, sizeof *ci);
    ci->config_json = json;
    ci->inst = inst;
    ci->next = c->insts;
    c->insts = ci;
    return inst;
}

/* ------------------------------------------------------------------ */
/* Picos                                                               */

/* resolve_pico - the id of PICO (id or name), or an error */
static kval
resolve_pico(struct engine *e, const char *pico)
{
    struct store_pico p;
    int rc = store_pico_get(e->st, pico, &p);
    if (rc == STORE_NOTFOUND)
        return kval_error("Error: no such pico: %s", pico);
    if (rc != STORE_OK)
        return engine_store_error(e, rc);
    kval id = kval_cstr(p.id);
    store_pico_release(&p);
    return id;
}

kval
engine_pico_id(struct engine *e, const char *pico)
{
    return resolve_pico(e, pico);
}

/* make_channel - store a new channel of PICO_ID */
/* spec_flag - a true boolean member KEY of SPEC */
static bool
spec_flag(const kval *spec, const char *key)
{
    const kval *v = spec ? kval_map_get_str(spec, key) : NULL;
    return v != NULL && kval_kind(v) == KV_BOOL && kval_get_bool(v);
}

static kval
make_channel(struct engine *e, const char *pico_id, const char *eci,
             const kval *spec, const char *family_pico, bool system_ok)
{
    const kval *tags = spec ? kval_map_get_str(spec, "tags") : NULL;
    kval ntags = tags_normalize(tags, system_ok);
    if (kval_is_error(&ntags))
        return ntags;
    kval ep = policy_normalize(spec ? kval_map_get_str(spec, "eventPolicy")
                                    : NULL,
                               POLICY_EVENT);
    if (kval_is_error(&ep)) {
        kval_free(ntags);
        return ep;
    }
    kval qp = policy_normalize(spec ? kval_map_get_str(spec, "queryPolicy")
                                    : NULL,
                               POLICY_QUERY);
    if (kval_is_error(&qp)) {
        kval_free(ntags);
        kval_free(ep);
        return qp;
    }
    const kval *alias = spec ? kval_map_get_str(spec, "alias") : NULL;
    const kval *senders = spec ? kval_map_get_str(spec, "senders") : NULL;
    char id[ID_BUFSIZE];
    if (eci == NULL) {
        id_new(id);
        eci = id;
    }
    struct store_channel ch = {
        .eci = (char *)eci,
        .pico_id = (char *)pico_id,
        .tags = ntags,
        .event_policy = ep,
        .query_policy = qp,
        .family_pico_id = (char *)family_pico,
        .alias = alias && kval_kind(alias) == KV_STRING
                     ? (char *)kval_str_ptr(alias)
                     : NULL,
        .senders = senders && kval_kind(senders) == KV_ARRAY
                       ? kval_copy(senders)
                       : kval_array(),
        .require_dkim = spec_flag(spec, "requireDkim"),
        .require_dmarc = spec_flag(spec, "requireDmarc"),
    };
    kval result;
    if (ch.alias != NULL && !id_valid_eci(ch.alias)) {
        result = kval_error("Error: invalid alias: %s", ch.alias);
    } else {
        int rc = store_channel_put(e->st, &ch);
        if (rc != STORE_OK) {
            result = engine_store_error(e, rc);
        } else if (result = engine_changed(e), kval_is_error(&result)) {
            /* the error is the result */
        } else {
            result = kval_map();
            result = kval_map_put_str(result, "id", kval_cstr(eci));
            result = kval_map_put_str(result, "eci", kval_cstr(eci));
            result = kval_map_put_str(result, "tags", kval_copy(&ntags));
            result = kval_map_put_str(result, "eventPolicy", kval_copy(&ep));
            result = kval_map_put_str(result, "queryPolicy", kval_copy(&qp));
            if (ch.alias != NULL)
                result = kval_map_put_str(result, "alias",
                                          kval_cstr(ch.alias));
        }
    }
    kval_free(ntags);
    kval_free(ep);
    kval_free(qp);
    kval_free(ch.senders);
    return result;
}

static kval
family_spec(const char *tag)
{
    kval tags = kval_array_append(kval_array(), kval_cstr("system"));
    tags = kval_array_append(tags, kval_cstr(tag));
    return kval_map_put_str(kval_map(), "tags", tags);
}

/* new_pico - a pico with its self channel (ECI = id) and, for a child,
 * the family channels of krl-language.md §8.1 */
kval
engine_new_pico(struct engine *e, const char *name, const char *parent_id)
{
    char id[ID_BUFSIZE];
    id_new(id);
    int rc = store_pico_new(e->st, id, parent_id, name);
    if (rc != STORE_OK)
        return rc == STORE_EINVAL
                   ? kval_error("Error: a pico is already named %s", name)
                   : engine_store_error(e, rc);
    kval spec = family_spec("self");
    kval ch = make_channel(e, id, id, &spec, id, true);
    kval_free(spec);
    if (kval_is_error(&ch))
        return ch;
    kval_free(ch);
    if (parent_id != NULL) {
        /* the parent's channel to the child: only the parent may use it */
        spec = family_spec("child");
        ch = make_channel(e, id, NULL, &spec, parent_id, true);
        kval_free(spec);
        if (kval_is_error(&ch))
            return ch;
        kval_free(ch);
        /* the child's channel to its parent: only the child may use it */
        spec = family_spec("parent");
        ch = make_channel(e, parent_id, NULL, &spec, id, true);
        kval_free(spec);
        if (kval_is_error(&ch))
            return ch;
        kval_free(ch);
    }
    kval r = kval_map_put_str(kval_map(), "id", kval_cstr(id));
    return kval_map_put_str(r, "name", name ? kval_cstr(name) : kval_null());
}

/* in_txn - run a change in one transaction; BODY's error rolls back */
static kval
finish(struct engine *e, kval result)
{
    if (kval_is_error(&result)) {
        store_rollback(e->st);
        return result;
    }
    int rc = store_commit(e->st);
    if (rc != STORE_OK) {
        kval_free(result);
        store_rollback(e->st);
        return engine_store_error(e, rc);
    }
    return result;
}

static kval
begin(struct engine *e)
{
    int rc = store_begin(e->st);
    return rc == STORE_OK ? kval_null() : engine_store_error(e, rc);
}

kval
engine_init(struct engine *e)
{
    kval b = begin(e);
    if (kval_is_error(&b))
        return b;
    char *root = NULL;
    kval result;
    int rc = store_meta_get(e->st, "root_pico", &root);
    if (rc == STORE_OK) {
        result = kval_map_put_str(kval_map(), "root", kval_cstr(root));
        free(root);
    } else if (rc == STORE_NOTFOUND) {
        kval p = engine_new_pico(e, "root", NULL);
        if (kval_is_error(&p)) {
            result = p;
        } else {
            const char *id = kval_str_ptr(kval_map_get_str(&p, "id"));
            rc = store_meta_put(e->st, "root_pico", id);
            result = rc == STORE_OK
                         ? kval_map_put_str(kval_map(), "root", kval_cstr(id))
                         : engine_store_error(e, rc);
            kval_free(p);
        }
    } else {
        result = engine_store_error(e, rc);
    }
    return finish(e, result);
}

/* root_id - the root pico's id, or an error asking for `picomail init` */
static kval
root_id(struct engine *e)
{
    char *root = NULL;
    int rc = store_meta_get(e->st, "root_pico", &root);
    if (rc == STORE_NOTFOUND)
        return kval_error("Error: no root pico: run `picomail init` first");
    if (rc != STORE_OK)
        return engine_store_error(e, rc);
    kval id = kval_cstr(root);
    free(root);
    return id;
}

kval
engine_pico_new(struct engine *e, const char *name, const char *parent)
{
    kval b = begin(e);
    if (kval_is_error(&b))
        return b;
    kval pid = parent ? resolve_pico(e, parent) : root_id(e);
    if (kval_is_error(&pid))
        return finish(e, pid);
    kval r = engine_new_pico(e, name, kval_str_ptr(&pid));
    kval_free(pid);
    return finish(e, r);
}

kval
engine_pico_list(struct engine *e)
{
    kval out;
    int rc = store_pico_list(e->st, &out);
    return rc == STORE_OK ? out : engine_store_error(e, rc);
}

kval
engine_pico_show(struct engine *e, const char *pico)
{
    struct store_pico p;
    int rc = store_pico_get(e->st, pico, &p);
    if (rc == STORE_NOTFOUND)
        return kval_error("Error: no such pico: %s", pico);
    if (rc != STORE_OK)
        return engine_store_error(e, rc);
    kval r = kval_map();
    r = kval_map_put_str(r, "id", kval_cstr(p.id));
    r = kval_map_put_str(r, "name", p.name ? kval_cstr(p.name) : kval_null());
    r = kval_map_put_str(r, "parent",
                         p.parent_id ? kval_cstr(p.parent_id) : kval_null());
    kval v;
    if (store_pico_children(e->st, p.id, &v) == STORE_OK)
        r = kval_map_put_str(r, "children", v);
    if (store_channel_list(e->st, p.id, &v) == STORE_OK)
        r = kval_map_put_str(r, "channels", v);
    if (store_install_list(e->st, p.id, &v) == STORE_OK)
        r = kval_map_put_str(r, "rulesets", v);
    store_pico_release(&p);
    return r;
}

/* delete_tree - ID and its descendants, children first */
static kval
delete_tree(struct engine *e, const char *id, int depth)
{
    if (depth > 1000)
        return kval_error("Error: pico tree too deep to delete");
    kval children;
    int rc = store_pico_children(e->st, id, &children);
    if (rc != STORE_OK)
        return engine_store_error(e, rc);
    for (size_t i = 0; i < kval_array_len(&children); i++) {
        kval r = delete_tree(e, kval_str_ptr(kval_array_get(&children, i)),
                             depth + 1);
        if (kval_is_error(&r)) {
            kval_free(children);
            return r;
        }
    }
    kval_free(children);
    engine_ents_forget(e, id, NULL);
    rc = store_pico_delete(e->st, id);
    return rc == STORE_OK ? engine_changed(e) : engine_store_error(e, rc);
}

kval
engine_delete_pico(struct engine *e, const char *id)
{
    return delete_tree(e, id, 0);
}

kval
engine_pico_rm(struct engine *e, const char *pico)
{
    kval b = begin(e);
    if (kval_is_error(&b))
        return b;
    kval id = resolve_pico(e, pico);
    if (kval_is_error(&id))
        return finish(e, id);
    kval root = root_id(e);
    kval r;
    if (!kval_is_error(&root) && kval_str_eq(&root, &id))
        r = kval_error("Error: the root pico cannot be removed");
    else
        r = delete_tree(e, kval_str_ptr(&id), 0);
    kval_free(root);
    if (!kval_is_error(&r)) {
        kval_free(r);
        r = kval_map_put_str(kval_map(), "removed", kval_copy(&id));
    }
    kval_free(id);
    return finish(e, r);
}

/* ------------------------------------------------------------------ */
/* Channels                                                            */

kval
engine_channel_new(struct engine *e, const char *pico, const kval *spec)
{
    kval b = begin(e);
    if (kval_is_error(&b))
        return b;
    kval id = resolve_pico(e, pico);
    if (kval_is_error(&id))
        return finish(e, id);
    kval r = make_channel(e, kval_str_ptr(&id), NULL, spec, NULL, false);
    kval_free(id);
    return finish(e, r);
}

kval
engine_channel_new_in(struct engine *e, const char *pico_id, const kval *spec)
{
    return make_channel(e, pico_id, NULL, spec, NULL, false);
}

kval
engine_channel_list(struct engine *e, const char *pico)
{
    kval id = resolve_pico(e, pico);
    if (kval_is_error(&id))
        return id;
    kval out;
    int rc = store_channel_list(e->st, kval_str_ptr(&id), &out);
    kval_free(id);
    return rc == STORE_OK ? out : engine_store_error(e, rc);
}

kval
engine_channel_rm(struct engine *e, const char *eci)
{
    struct store_channel ch;
    int rc = store_channel_get(e->st, eci, &ch);
    if (rc == STORE_NOTFOUND)
        return kval_error("Error: ECI not found %s", eci);
    if (rc != STORE_OK)
        return engine_store_error(e, rc);
    bool family = ch.family_pico_id != NULL;
    store_channel_release(&ch);
    if (family)
        return kval_error("Error: Cannot delete a family channel");
    rc = store_channel_delete(e->st, eci);
    if (rc != STORE_OK)
        return engine_store_error(e, rc);
    kval changed = engine_changed(e);
    if (kval_is_error(&changed))
        return changed;
    return kval_map_put_str(kval_map(), "removed", kval_cstr(eci));
}

/* ------------------------------------------------------------------ */
/* Rulesets                                                            */

kval
engine_ruleset_register(struct engine *e, const char *file, const char *src,
                        size_t len)
{
    char hash[65];
    sha256_hex(src, len, hash);
    kval err = kval_null();
    struct compiled *c = NULL;
    for (c = e->compiled; c != NULL; c = c->next)
        if (strcmp(c->hash, hash) == 0)
            break;
    if (c == NULL) {
        c = compile_source(file, src, len, hash, &err);
        if (c == NULL)
            return err;
        c->next = e->compiled;
        e->compiled = c;
    }
    const struct ast_ruleset *ast = krl_ruleset_ast(c->rs);
    const char *version = NULL;
    if (ast->meta.version != NULL && ast->meta.version->kind == AST_STRING)
        version = ast->meta.version->u.string.s;
    char *text = xmemdup(src, len);
    int rc = store_ruleset_put(e->st, ast->rid.s, hash, version, text);
    free(text);
    if (rc != STORE_OK)
        return engine_store_error(e, rc);
    kval r = kval_map_put_str(kval_map(), "rid", kval_cstr(ast->rid.s));
    return kval_map_put_str(r, "hash", kval_cstr(hash));
}

kval
engine_ruleset_list(struct engine *e)
{
    kval out;
    int rc = store_ruleset_list(e->st, &out);
    return rc == STORE_OK ? out : engine_store_error(e, rc);
}

kval
engine_ruleset_show(struct engine *e, const char *rid)
{
    struct store_ruleset r;
    int rc = store_ruleset_get(e->st, rid, &r);
    if (rc == STORE_NOTFOUND)
        return kval_error("Error: no such ruleset: %s", rid);
    if (rc != STORE_OK)
        return engine_store_error(e, rc);
    kval m = kval_map();
    m = kval_map_put_str(m, "rid", kval_cstr(r.rid));
    m = kval_map_put_str(m, "hash", kval_cstr(r.hash));
    m = kval_map_put_str(m, "version",
                         r.version ? kval_cstr(r.version) : kval_null());
    m = kval_map_put_str(m, "registered", kval_number((double)r.registered_ms));
    m = kval_map_put_str(m, "source", kval_cstr(r.source));
    kval users;
    if (store_install_users(e->st, rid, &users) == STORE_OK)
        m = kval_map_put_str(m, "picos", users);
    store_ruleset_release(&r);
    return m;
}

/* uses_of - the rids C uses as modules, an array */
static kval
uses_of(struct compiled *c)
{
    const struct ast_ruleset *ast = krl_ruleset_ast(c->rs);
    kval out = kval_array();
    for (size_t i = 0; i < ast->meta.n_uses; i++)
        out = kval_array_append(out, kval_cstr(ast->meta.uses[i].rid.s));
    return out;
}

/* install_one - install the current version of RID on PICO_ID inside an
 * open transaction */
static kval
install_one(struct engine *e, const char *pico_id, const char *rid,
            const kval *config)
{
    struct store_ruleset r;
    int rc = store_ruleset_get(e->st, rid, &r);
    if (rc == STORE_NOTFOUND)
        return kval_error("Error: no such ruleset registered: %s", rid);
    if (rc != STORE_OK)
        return engine_store_error(e, rc);
    kval err = kval_null();
    struct compiled *c = engine_compiled(e, r.hash, &err);
    if (c == NULL) {
        store_ruleset_release(&r);
        return err;
    }
    /* a module must be installed before the rulesets that use it */
    kval uses = uses_of(c);
    kval installed;
    rc = store_install_list(e->st, pico_id, &installed);
    kval result = kval_null();
    if (rc != STORE_OK)
        result = engine_store_error(e, rc);
    for (size_t i = 0; rc == STORE_OK && i < kval_array_len(&uses); i++) {
        const char *need = kval_str_ptr(kval_array_get(&uses, i));
        bool found = false;
        for (size_t j = 0; j < kval_array_len(&installed); j++) {
            const kval *m = kval_array_get(&installed, j);
            if (strcmp(kval_str_ptr(kval_map_get_str(m, "rid")), need) == 0)
                found = true;
        }
        if (!found) {
            result = kval_error("Error: Module not found: %s (install it "
                                "before %s)", need, rid);
            break;
        }
    }
    if (rc == STORE_OK)
        kval_free(installed);
    kval_free(uses);
    if (!kval_is_error(&result)) {
        kval none = kval_map();
        rc = store_install_put(e->st, pico_id, rid, r.hash,
                               config && !kval_is_null(config) ? config
                                                               : &none);
        kval_free(none);
        if (rc != STORE_OK)
            result = engine_store_error(e, rc);
        else if (store_ee_delete_rid(e->st, pico_id, rid) == STORE_OK)
            result = engine_changed(e);
    }
    store_ruleset_release(&r);
    return result;
}

kval
engine_install_in(struct engine *e, const char *pico_id, const char *rid,
                  const kval *config)
{
    if (config != NULL && !kval_is_null(config) &&
        kval_kind(config) != KV_MAP)
        return kval_error("Error: the config must be a map");
    return install_one(e, pico_id, rid, config);
}

kval
engine_install(struct engine *e, const char *pico, const char *rid,
               const kval *config)
{
    if (config != NULL && !kval_is_null(config) &&
        kval_kind(config) != KV_MAP)
        return kval_error("Error: the config must be a map");
    kval b = begin(e);
    if (kval_is_error(&b))
        return b;
    kval id = resolve_pico(e, pico);
    if (kval_is_error(&id))
        return finish(e, id);
    kval r = install_one(e, kval_str_ptr(&id), rid, config);
    if (!kval_is_error(&r)) {
        kval_free(r);
        r = kval_map_put_str(kval_map(), "pico", kval_copy(&id));
        r = kval_map_put_str(r, "rid", kval_cstr(rid));
    }
    kval_free(id);
    return finish(e, r);
}

/* uninstall_one - refused while another installed ruleset uses RID */
kval
engine_uninstall_one(struct engine *e, const char *pico_id, const char *rid)
{
    kval installed;
    int rc = store_install_list(e->st, pico_id, &installed);
    if (rc != STORE_OK)
        return engine_store_error(e, rc);
    kval result = kval_null();
    bool present = false;
    for (size_t i = 0; i < kval_array_len(&installed); i++) {
        const kval *m = kval_array_get(&installed, i);
        const char *other = kval_str_ptr(kval_map_get_str(m, "rid"));
        if (strcmp(other, rid) == 0) {
            present = true;
            continue;
        }
        kval err = kval_null();
        struct compiled *c = engine_compiled(
            e, kval_str_ptr(kval_map_get_str(m, "hash")), &err);
        if (c == NULL) {
            kval_free(err);
            continue;
        }
        const struct ast_ruleset *ast = krl_ruleset_ast(c->rs);
        for (size_t u = 0; u < ast->meta.n_uses; u++)
            if (strcmp(ast->meta.uses[u].rid.s, rid) == 0 &&
                kval_is_null(&result))
                result = kval_error("Error: Cannot uninstall %s because %s "
                                    "depends on it", rid, other);
    }
    kval_free(installed);
    if (kval_is_error(&result))
        return result;
    if (!present)
        return kval_error("Error: Pico doesn't have %s installed.", rid);
    rc = store_install_delete(e->st, pico_id, rid);
    engine_ents_forget(e, pico_id, rid);
    if (rc == STORE_OK)
        rc = store_ent_delete_rid(e->st, pico_id, rid);
    if (rc == STORE_OK)
        rc = store_ee_delete_rid(e->st, pico_id, rid);
    return rc == STORE_OK ? engine_changed(e) : engine_store_error(e, rc);
}

kval
engine_uninstall(struct engine *e, const char *pico, const char *rid)
{
    kval b = begin(e);
    if (kval_is_error(&b))
        return b;
    kval id = resolve_pico(e, pico);
    if (kval_is_error(&id))
        return finish(e, id);
    kval r = engine_uninstall_one(e, kval_str_ptr(&id), rid);
    if (!kval_is_error(&r)) {
        kval_free(r);
        r = kval_map_put_str(kval_map(), "pico", kval_copy(&id));
        r = kval_map_put_str(r, "rid", kval_cstr(rid));
    }
    kval_free(id);
    return finish(e, r);
}

kval
engine_ruleset_flush(struct engine *e, const char *rid)
{
    kval b = begin(e);
    if (kval_is_error(&b))
        return b;
    kval users;
    int rc = store_install_users(e->st, rid, &users);
    if (rc != STORE_OK)
        return finish(e, engine_store_error(e, rc));
    kval result = kval_null();
    for (size_t i = 0; i < kval_array_len(&users); i++) {
        const char *pico_id = kval_str_ptr(kval_array_get(&users, i));
        kval installed;
        if (store_install_list(e->st, pico_id, &installed) != STORE_OK)
            continue;
        for (size_t j = 0; j < kval_array_len(&installed); j++) {
            const kval *m = kval_array_get(&installed, j);
            if (strcmp(kval_str_ptr(kval_map_get_str(m, "rid")), rid) != 0)
                continue;
            kval r = install_one(e, pico_id, rid, kval_map_get_str(m,
                                                                   "config"));
            if (kval_is_error(&r)) {
                kval_free(result);
                result = r;
            }
        }
        kval_free(installed);
    }
    if (!kval_is_error(&result)) {
        result = kval_map_put_str(kval_map(), "rid", kval_cstr(rid));
        result = kval_map_put_str(result, "picos", kval_copy(&users));
    }
    kval_free(users);
    return finish(e, result);
}

/* ------------------------------------------------------------------ */
/* Inspection                                                          */

kval
engine_ent(struct engine *e, const char *pico, const char *rid,
           const char *name)
{
    kval id = resolve_pico(e, pico);
    if (kval_is_error(&id))
        return id;
    kval out = kval_null();
    int rc = name != NULL
                 ? store_ent_get(e->st, kval_str_ptr(&id), rid, name, &out)
                 : store_ent_list(e->st, kval_str_ptr(&id), rid, &out);
    kval_free(id);
    if (rc == STORE_NOTFOUND)
        return kval_null();
    return rc == STORE_OK ? out : engine_store_error(e, rc);
}

kval
engine_log(struct engine *e, const char *pico, int limit)
{
    kval id = kval_null();
    if (pico != NULL) {
        id = resolve_pico(e, pico);
        if (kval_is_error(&id))
            return id;
    }
    kval out;
    int rc = store_log_list(e->st, pico ? kval_str_ptr(&id) : NULL, limit,
                            &out);
    kval_free(id);
    return rc == STORE_OK ? out : engine_store_error(e, rc);
}
