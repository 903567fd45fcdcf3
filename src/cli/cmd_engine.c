/*
 * cmd_engine.c - the picomail commands that work on a database: init,
 * pico, channel, ruleset, install, uninstall, event, query, ent, log.
 *
 * Options common to all: --db FILE (else `database` of the configuration),
 * -c FILE (another configuration file), --json (one JSON object on
 * stdout).  Human-readable output otherwise.  Errors go to stderr with
 * exit status 1; usage errors exit 2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "picomail/buf.h"
#include "picomail/conf.h"
#include "picomail/engine.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/ops.h"

#include "cli.h"

#define MAX_ARGS 64

/* What the command line said. */
struct opts {
    const char *db;
    const char *conf;
    bool json;
    const char *args[MAX_ARGS];     /* positional arguments */
    int n_args;
    const char *parent;
    const char *alias;
    const char *config;
    const char *time;
    const char *limit;
    const char *tags[MAX_ARGS];
    int n_tags;
    const char *allow[MAX_ARGS];
    int n_allow;
    const char *deny[MAX_ARGS];
    int n_deny;
    const char *senders[MAX_ARGS];
    int n_senders;
    bool require_dkim;
    bool require_dmarc;
};

/* parse_opts - argv after the command word; -1 on a usage error */
static int
parse_opts(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **one = NULL;
        const char **list = NULL;
        int *n = NULL;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (strcmp(a, "--require-dkim") == 0) {
            o->require_dkim = true;
            continue;
        }
        if (strcmp(a, "--require-dmarc") == 0) {
            o->require_dmarc = true;
            continue;
        }
        if (strcmp(a, "--db") == 0)
            one = &o->db;
        else if (strcmp(a, "-c") == 0)
            one = &o->conf;
        else if (strcmp(a, "--parent") == 0 || strcmp(a, "--pico") == 0)
            one = &o->parent;   /* --pico: the pico a listing is about */
        else if (strcmp(a, "--alias") == 0)
            one = &o->alias;
        else if (strcmp(a, "--config") == 0)
            one = &o->config;
        else if (strcmp(a, "--time") == 0)
            one = &o->time;
        else if (strcmp(a, "--limit") == 0)
            one = &o->limit;
        else if (strcmp(a, "--tag") == 0)
            list = o->tags, n = &o->n_tags;
        else if (strcmp(a, "--allow") == 0)
            list = o->allow, n = &o->n_allow;
        else if (strcmp(a, "--deny") == 0)
            list = o->deny, n = &o->n_deny;
        else if (strcmp(a, "--sender") == 0)
            list = o->senders, n = &o->n_senders;
        else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "picomail: unknown option %s\n", a);
            return -1;
        } else {
            if (o->n_args == MAX_ARGS)
                return -1;
            o->args[o->n_args++] = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "picomail: %s needs a value\n", a);
            return -1;
        }
        if (one != NULL) {
            *one = argv[++i];
        } else {
            if (*n == MAX_ARGS)
                return -1;
            list[(*n)++] = argv[++i];
        }
    }
    return 0;
}

/* make_parent_dir - the directory of the database file */
static void
make_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL || slash == path)
        return;
    char *dir = xmemdup(path, (size_t)(slash - path));
    mkdir(dir, 0750);
    free(dir);
}

static struct engine *
open_engine(const struct opts *o)
{
    char err[512] = "";
    const char *path = o->conf ? o->conf : conf_default_path();
    struct conf *c = conf_load(path, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "picomail: %s\n", err);
        return NULL;
    }
    struct engine_options eo;
    engine_options_default(&eo);
    eo.database = o->db ? o->db : conf_get(c, "database");
    eo.mail_domain = conf_get(c, "mail_domain");
    eo.mail_sender = conf_get(c, "mail_sender");
    if (strcmp(eo.database, ":memory:") != 0)
        make_parent_dir(eo.database);
    struct engine *e = engine_open(&eo, err, sizeof err);
    if (e == NULL)
        fprintf(stderr, "picomail: %s: %s\n", eo.database, err);
    conf_free(c);
    return e;
}

/* print_json - V as one line of JSON */
static void
print_json(const kval *v)
{
    struct buf b;
    buf_init(&b);
    if (kval_is_null(v))
        buf_adds(&b, "null");
    else
        json_encode(v, JSON_KRL, 0, &b);
    puts(b.data);
    buf_release(&b);
}

static void
print_pretty(const kval *v)
{
    struct buf b;
    buf_init(&b);
    if (kval_is_null(v))
        buf_adds(&b, "null");
    else
        json_encode(v, JSON_KRL, 2, &b);
    puts(b.data);
    buf_release(&b);
}

/* finish - print the result or the error; consumes R; the exit status */
static int
finish(const struct opts *o, kval r, void (*human)(const kval *))
{
    int status = 0;
    if (kval_is_error(&r)) {
        const char *msg = kval_error_msg(&r);
        if (strncmp(msg, "Error: ", 7) == 0)
            msg += 7;
        fprintf(stderr, "picomail: %s\n", msg);
        status = 1;
    } else if (o->json || human == NULL) {
        print_json(&r);
    } else {
        human(&r);
    }
    kval_free(r);
    return status;
}

static const char *
str_member(const kval *m, const char *key)
{
    const kval *v = kval_map_get_str(m, key);
    return v != NULL && kval_kind(v) == KV_STRING ? kval_str_ptr(v) : "";
}

/* name_values - NAME=VALUE (a string) or NAME:=JSON arguments as a map */
static kval
name_values(const struct opts *o, int from)
{
    kval m = kval_map();
    for (int i = from; i < o->n_args; i++) {
        const char *a = o->args[i];
        const char *eq = strchr(a, '=');
        if (eq == NULL || eq == a) {
            kval_free(m);
            return kval_error("Error: expected NAME=VALUE or NAME:=JSON, "
                              "not \"%s\"", a);
        }
        bool is_json = eq > a && eq[-1] == ':';
        size_t name_len = (size_t)(eq - a) - (is_json ? 1 : 0);
        kval v;
        if (is_json) {
            v = json_parse(eq + 1, strlen(eq + 1));
            if (kval_is_error(&v)) {
                kval_free(m);
                return v;
            }
        } else {
            v = kval_cstr(eq + 1);
        }
        m = kval_map_put(m, kval_str(a, name_len), v);
    }
    return m;
}

/* ---- human output ---- */

static void
show_kv_map(const kval *r)
{
    struct kval_map_iter it;
    const kval *k, *v;
    kval_map_iter_init(&it, r);
    while (kval_map_iter_next(&it, &k, &v)) {
        kval s = kval_kind(v) == KV_STRING ? kval_copy(v) : kval_null();
        if (kval_is_null(&s)) {
            char *j = json_to_cstr(v, JSON_KRL);
            s = kval_cstr(j ? j : "?");
            free(j);
        }
        printf("%-10s %s\n", kval_str_ptr(k), kval_str_ptr(&s));
        kval_free(s);
    }
    kval_map_iter_done(&it);
}

static void
show_pico_list(const kval *r)
{
    for (size_t i = 0; i < kval_array_len(r); i++) {
        const kval *p = kval_array_get(r, i);
        printf("%s  %-20s parent=%s\n", str_member(p, "id"),
               str_member(p, "name"), str_member(p, "parent"));
    }
}

static void
show_channels(const kval *r)
{
    for (size_t i = 0; i < kval_array_len(r); i++) {
        const kval *c = kval_array_get(r, i);
        char *tags = json_to_cstr(kval_map_get_str(c, "tags"), JSON_KRL);
        printf("%s  tags=%s%s%s\n", str_member(c, "eci"), tags ? tags : "[]",
               *str_member(c, "alias") ? " alias=" : "",
               str_member(c, "alias"));
        free(tags);
    }
}

static void
show_rulesets(const kval *r)
{
    for (size_t i = 0; i < kval_array_len(r); i++) {
        const kval *m = kval_array_get(r, i);
        printf("%-40s %.12s\n", str_member(m, "rid"), str_member(m, "hash"));
    }
}

static void
show_event(const kval *r)
{
    const kval *ds = kval_map_get_str(r, "directives");
    printf("eid %s: %zu directive(s)\n", str_member(r, "eid"),
           ds ? kval_array_len(ds) : 0);
    for (size_t i = 0; ds && i < kval_array_len(ds); i++) {
        const kval *d = kval_array_get(ds, i);
        char *opts = json_to_cstr(kval_map_get_str(d, "options"), JSON_KRL);
        printf("  %s %s\n", str_member(d, "name"), opts ? opts : "{}");
        free(opts);
    }
}

static void
show_log(const kval *r)
{
    for (size_t i = 0; i < kval_array_len(r); i++) {
        const kval *m = kval_array_get(r, i);
        const kval *err = kval_map_get_str(m, "error");
        char *res = json_to_cstr(kval_map_get_str(m, "result"), JSON_KRL);
        double t = kval_get_number(kval_map_get_str(m, "time"));
        printf("%.0f %s %s %s:%s %s%s\n", t, str_member(m, "eid"),
               str_member(m, "kind"), str_member(m, "domain"),
               str_member(m, "name"), err && !kval_is_null(err) ? "error: " : "",
               err && !kval_is_null(err) ? kval_str_ptr(err)
                                         : (res ? res : ""));
        free(res);
    }
}

static void
show_inbox(const kval *r)
{
    for (size_t i = 0; i < kval_array_len(r); i++) {
        const kval *m = kval_array_get(r, i);
        const kval *err = kval_map_get_str(m, "error");
        const kval *eid = kval_map_get_str(m, "eid");
        printf("%.0f %s %.0f %s %s:%s <%s> %s%s%s\n",
               kval_get_number(kval_map_get_str(m, "id")),
               str_member(m, "state"),
               kval_get_number(kval_map_get_str(m, "received")),
               str_member(m, "eci"), str_member(m, "domain"),
               str_member(m, "type"), str_member(m, "rcpt"),
               eid && !kval_is_null(eid) ? kval_str_ptr(eid) : "-",
               err && !kval_is_null(err) ? " error: " : "",
               err && !kval_is_null(err) ? kval_str_ptr(err) : "");
    }
}

/* ---- commands ---- */

static int
usage_error(const char *usage)
{
    fprintf(stderr, "usage: picomail %s\n", usage);
    return 2;
}

int
cmd_init(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0 || o.n_args != 0)
        return usage_error("init [--db FILE] [--json]");
    struct engine *e = open_engine(&o);
    if (e == NULL)
        return 1;
    int status = finish(&o, engine_init(e), show_kv_map);
    engine_close(e);
    return status;
}

int
cmd_pico(int argc, char **argv)
{
    struct opts o;
    const char *usage = "pico new NAME [--parent PICO] | pico list | "
                        "pico show PICO | pico rm PICO";
    if (parse_opts(argc, argv, &o) != 0 || o.n_args < 1)
        return usage_error(usage);
    const char *sub = o.args[0];
    struct engine *e = NULL;
    kval r;
    void (*human)(const kval *) = show_kv_map;
    if (strcmp(sub, "new") == 0 && o.n_args == 2) {
        if ((e = open_engine(&o)) == NULL)
            return 1;
        r = engine_pico_new(e, o.args[1], o.parent);
    } else if (strcmp(sub, "list") == 0 && o.n_args == 1) {
        if ((e = open_engine(&o)) == NULL)
            return 1;
        r = engine_pico_list(e);
        human = show_pico_list;
    } else if (strcmp(sub, "show") == 0 && o.n_args == 2) {
        if ((e = open_engine(&o)) == NULL)
            return 1;
        r = engine_pico_show(e, o.args[1]);
        human = print_pretty;
    } else if (strcmp(sub, "rm") == 0 && o.n_args == 2) {
        if ((e = open_engine(&o)) == NULL)
            return 1;
        r = engine_pico_rm(e, o.args[1]);
    } else {
        return usage_error(usage);
    }
    int status = finish(&o, r, human);
    engine_close(e);
    return status;
}

/* policy_of - "--allow D:T" rules as a policy map (KIND names the first
 * field: domain or rid) */
static kval
policy_rules(const char *const *items, int n, const char *first)
{
    kval list = kval_array();
    for (int i = 0; i < n; i++) {
        const char *colon = strchr(items[i], ':');
        if (colon == NULL) {
            kval_free(list);
            return kval_error("Error: expected %s:NAME, not \"%s\"", first,
                              items[i]);
        }
        kval rule = kval_map_put(kval_map(), kval_cstr(first),
                                 kval_str(items[i],
                                          (size_t)(colon - items[i])));
        rule = kval_map_put_str(rule, "name", kval_cstr(colon + 1));
        list = kval_array_append(list, rule);
    }
    return list;
}

int
cmd_channel(int argc, char **argv)
{
    struct opts o;
    const char *usage = "channel new PICO [--tag T]... [--allow D:T]... "
                        "[--deny D:T]... [--alias NAME] "
                        "[--sender ADDR_OR_DOMAIN]... [--require-dkim] "
                        "[--require-dmarc] | channel list PICO | "
                        "channel rm ECI";
    if (parse_opts(argc, argv, &o) != 0 || o.n_args != 2)
        return usage_error(usage);
    const char *sub = o.args[0];
    if (strcmp(sub, "new") != 0 && strcmp(sub, "list") != 0 &&
        strcmp(sub, "rm") != 0)
        return usage_error(usage);
    struct engine *e = open_engine(&o);
    if (e == NULL)
        return 1;
    kval r;
    void (*human)(const kval *) = show_kv_map;
    if (strcmp(sub, "new") == 0) {
        kval spec = kval_map();
        kval tags = kval_array();
        for (int i = 0; i < o.n_tags; i++)
            tags = kval_array_append(tags, kval_cstr(o.tags[i]));
        spec = kval_map_put_str(spec, "tags", tags);
        r = kval_null();
        if (o.n_allow > 0 || o.n_deny > 0) {
            kval allow = policy_rules(o.allow, o.n_allow, "domain");
            kval deny = policy_rules(o.deny, o.n_deny, "domain");
            if (kval_is_error(&allow) || kval_is_error(&deny)) {
                r = kval_is_error(&allow) ? kval_copy(&allow)
                                          : kval_copy(&deny);
            } else if (o.n_allow == 0) {
                /* only denials: everything else stays allowed */
                kval star = kval_map_put_str(kval_map(), "domain",
                                             kval_cstr("*"));
                star = kval_map_put_str(star, "name", kval_cstr("*"));
                kval_free(allow);
                allow = kval_array_append(kval_array(), star);
            }
            kval p = kval_map_put_str(kval_map(), "allow", allow);
            p = kval_map_put_str(p, "deny", deny);
            spec = kval_map_put_str(spec, "eventPolicy", p);
        }
        if (o.alias)
            spec = kval_map_put_str(spec, "alias", kval_cstr(o.alias));
        kval senders = kval_array();
        for (int i = 0; i < o.n_senders; i++)
            senders = kval_array_append(senders, kval_cstr(o.senders[i]));
        spec = kval_map_put_str(spec, "senders", senders);
        if (o.require_dkim)
            spec = kval_map_put_str(spec, "requireDkim", kval_bool(true));
        if (o.require_dmarc)
            spec = kval_map_put_str(spec, "requireDmarc", kval_bool(true));
        if (kval_is_null(&r))
            r = engine_channel_new(e, o.args[1], &spec);
        kval_free(spec);
        if (!kval_is_error(&r)) {
            /* the mail address of the channel */
            char err[256];
            struct conf *c = conf_load(o.conf ? o.conf : conf_default_path(),
                                       err, sizeof err);
            const char *domain = c ? conf_get(c, "mail_domain")
                                   : "picos.localhost";
            const char *eci = str_member(&r, "eci");
            r = kval_map_put_str(r, "address",
                                 kval_str_fmt("%s@%s", eci, domain));
            conf_free(c);
        }
    } else if (strcmp(sub, "list") == 0) {
        r = engine_channel_list(e, o.args[1]);
        human = show_channels;
    } else {
        r = engine_channel_rm(e, o.args[1]);
    }
    int status = finish(&o, r, human);
    engine_close(e);
    return status;
}

int
cmd_ruleset(int argc, char **argv)
{
    struct opts o;
    const char *usage = "ruleset register FILE.krl | ruleset list | "
                        "ruleset show RID | ruleset flush RID";
    if (parse_opts(argc, argv, &o) != 0 || o.n_args < 1)
        return usage_error(usage);
    const char *sub = o.args[0];
    bool ok = (strcmp(sub, "list") == 0 && o.n_args == 1) ||
              ((strcmp(sub, "register") == 0 || strcmp(sub, "show") == 0 ||
                strcmp(sub, "flush") == 0) &&
               o.n_args == 2);
    if (!ok)
        return usage_error(usage);
    kval r;
    struct engine *e = NULL;
    void (*human)(const kval *) = show_kv_map;
    if (strcmp(sub, "register") == 0) {
        size_t len;
        char *src = cli_read_file(o.args[1], &len);
        if (src == NULL)
            return 1;
        if ((e = open_engine(&o)) == NULL) {
            free(src);
            return 1;
        }
        r = engine_ruleset_register(e, o.args[1], src, len);
        free(src);
    } else {
        if ((e = open_engine(&o)) == NULL)
            return 1;
        if (strcmp(sub, "list") == 0) {
            r = engine_ruleset_list(e);
            human = show_rulesets;
        } else if (strcmp(sub, "show") == 0) {
            r = engine_ruleset_show(e, o.args[1]);
            human = print_pretty;
        } else {
            r = engine_ruleset_flush(e, o.args[1]);
        }
    }
    int status = finish(&o, r, human);
    engine_close(e);
    return status;
}

int
cmd_install(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0 || o.n_args != 2)
        return usage_error("install PICO RID [--config JSON]");
    kval config = kval_null();
    if (o.config != NULL) {
        config = json_parse(o.config, strlen(o.config));
        if (kval_is_error(&config)) {
            fprintf(stderr, "picomail: --config: %s\n",
                    kval_error_msg(&config));
            kval_free(config);
            return 2;
        }
    }
    struct engine *e = open_engine(&o);
    if (e == NULL) {
        kval_free(config);
        return 1;
    }
    int status = finish(&o, engine_install(e, o.args[0], o.args[1], &config),
                        show_kv_map);
    kval_free(config);
    engine_close(e);
    return status;
}

int
cmd_uninstall(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0 || o.n_args != 2)
        return usage_error("uninstall PICO RID");
    struct engine *e = open_engine(&o);
    if (e == NULL)
        return 1;
    int status = finish(&o, engine_uninstall(e, o.args[0], o.args[1]),
                        show_kv_map);
    engine_close(e);
    return status;
}

int
cmd_event(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0 || o.n_args < 3)
        return usage_error("event ECI DOMAIN TYPE [NAME=VALUE | "
                           "NAME:=JSON]... [--time MS]");
    kval attrs = name_values(&o, 3);
    if (kval_is_error(&attrs)) {
        finish(&o, attrs, NULL);
        return 2;
    }
    struct engine *e = open_engine(&o);
    if (e == NULL) {
        kval_free(attrs);
        return 1;
    }
    int64_t t = o.time ? strtoll(o.time, NULL, 10) : 0;
    int status = finish(&o, engine_event(e, o.args[0], o.args[1], o.args[2],
                                         &attrs, t),
                        show_event);
    kval_free(attrs);
    engine_close(e);
    return status;
}

int
cmd_query(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0 || o.n_args < 3)
        return usage_error("query ECI RID NAME [NAME=VALUE | NAME:=JSON]...");
    kval args = name_values(&o, 3);
    if (kval_is_error(&args)) {
        finish(&o, args, NULL);
        return 2;
    }
    struct engine *e = open_engine(&o);
    if (e == NULL) {
        kval_free(args);
        return 1;
    }
    int status = finish(&o, engine_query(e, o.args[0], o.args[1], o.args[2],
                                         &args),
                        print_pretty);
    kval_free(args);
    engine_close(e);
    return status;
}

int
cmd_ent(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0 || o.n_args < 2 || o.n_args > 3)
        return usage_error("ent PICO RID [NAME]");
    struct engine *e = open_engine(&o);
    if (e == NULL)
        return 1;
    int status = finish(&o, engine_ent(e, o.args[0], o.args[1],
                                       o.n_args == 3 ? o.args[2] : NULL),
                        print_pretty);
    engine_close(e);
    return status;
}

static void
show_outbox(const kval *r)
{
    for (size_t i = 0; i < kval_array_len(r); i++) {
        const kval *m = kval_array_get(r, i);
        const kval *err = kval_map_get_str(m, "last_error");
        const kval *req = kval_map_get_str(m, "request");
        const kval *to = kval_map_get_str(req, "to");
        const kval *host = kval_map_get_str(req, "host");
        char *what = json_to_cstr(to ? to : host ? host : req, JSON_KRL);
        printf("%.0f %s %s attempts=%.0f %s%s%s\n",
               kval_get_number(kval_map_get_str(m, "id")),
               str_member(m, "state"), str_member(m, "kind"),
               kval_get_number(kval_map_get_str(m, "attempts")),
               what ? what : "",
               err && !kval_is_null(err) ? " error: " : "",
               err && !kval_is_null(err) ? kval_str_ptr(err) : "");
        free(what);
    }
}

int
cmd_outbox(int argc, char **argv)
{
    static const char usage[] = "outbox [--pico PICO] [--limit N] | "
                                "outbox retry ID";
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0 || o.n_args > 2 ||
        (o.n_args >= 1 && strcmp(o.args[0], "retry") != 0) ||
        (o.n_args == 1))
        return usage_error(usage);
    struct engine *e = open_engine(&o);
    if (e == NULL)
        return 1;
    struct store *st = engine_store(e);
    kval r;
    if (o.n_args == 2) {
        char *end;
        long long id = strtoll(o.args[1], &end, 10);
        int rc = *end != '\0' || id <= 0 ? STORE_EINVAL
                                          : store_outbox_requeue(st, id);
        r = rc == STORE_OK
                ? kval_map_put_str(kval_map(), "requeued",
                                   kval_number((double)id))
            : rc == STORE_NOTFOUND
                ? kval_error("Error: outbox entry %s has not failed",
                             o.args[1])
            : rc == STORE_EINVAL
                ? kval_error("Error: not an outbox id: %s", o.args[1])
                : kval_error("Error: %s", store_errmsg(st));
        int status = finish(&o, r, show_kv_map);
        engine_close(e);
        return status;
    }
    char *pico_id = NULL;
    if (o.parent != NULL) {
        kval id = engine_pico_id(e, o.parent);
        if (kval_is_error(&id)) {
            int status = finish(&o, id, show_outbox);
            engine_close(e);
            return status;
        }
        pico_id = xstrdup(kval_str_ptr(&id));
        kval_free(id);
    }
    int limit = o.limit ? (int)strtol(o.limit, NULL, 10) : 20;
    kval list;
    r = store_outbox_list(st, pico_id, limit > 0 ? limit : 20, &list) ==
                STORE_OK
            ? list
            : kval_error("Error: %s", store_errmsg(st));
    free(pico_id);
    int status = finish(&o, r, show_outbox);
    engine_close(e);
    return status;
}

int
cmd_inbox(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0 || o.n_args != 0)
        return usage_error("inbox [--limit N]");
    struct engine *e = open_engine(&o);
    if (e == NULL)
        return 1;
    int limit = o.limit ? (int)strtol(o.limit, NULL, 10) : 20;
    kval list;
    struct store *st = engine_store(e);
    kval r = store_inbox_list(st, limit > 0 ? limit : 20, &list) == STORE_OK
                 ? list
                 : kval_error("Error: %s", store_errmsg(st));
    int status = finish(&o, r, show_inbox);
    engine_close(e);
    return status;
}

int
cmd_log(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0 || o.n_args > 1)
        return usage_error("log [PICO] [--limit N]");
    struct engine *e = open_engine(&o);
    if (e == NULL)
        return 1;
    int limit = o.limit ? (int)strtol(o.limit, NULL, 10) : 20;
    int status = finish(&o, engine_log(e, o.n_args ? o.args[0] : NULL,
                                       limit > 0 ? limit : 20),
                        show_log);
    engine_close(e);
    return status;
}

/* ---- replay ---- */

/* strip - directives as the conformance format wants them: name, options */
static kval
strip(const kval *directives)
{
    kval out = kval_array();
    for (size_t i = 0; i < kval_array_len(directives); i++) {
        const kval *d = kval_array_get(directives, i);
        kval m = kval_map_put_str(kval_map(), "name",
                                  kval_copy(kval_map_get_str(d, "name")));
        const kval *opt = kval_map_get_str(d, "options");
        m = kval_map_put_str(m, "options", opt ? kval_copy(opt) : kval_map());
        out = kval_array_append(out, m);
    }
    return out;
}

static void
replay_line(struct engine *e, const char *eci, const char *line)
{
    kval in = json_parse(line, strlen(line));
    kval out;
    const kval *ev = kval_kind(&in) == KV_MAP ? kval_map_get_str(&in, "event")
                                              : NULL;
    const kval *q = kval_kind(&in) == KV_MAP ? kval_map_get_str(&in, "query")
                                             : NULL;
    if (ev != NULL && kval_kind(ev) == KV_MAP) {
        const kval *t = kval_map_get_str(ev, "time");
        kval r = engine_event(e, eci, str_member(ev, "domain"),
                              str_member(ev, "type"),
                              kval_map_get_str(ev, "attrs"),
                              t ? (int64_t)kval_get_number(t) : 0);
        if (kval_is_error(&r)) {
            out = kval_map_put_str(kval_map(), "error",
                                   kval_cstr(kval_error_msg(&r)));
        } else {
            out = kval_map_put_str(kval_map(), "directives",
                                   strip(kval_map_get_str(&r, "directives")));
        }
        kval_free(r);
    } else if (q != NULL && kval_kind(q) == KV_MAP) {
        kval r = engine_query(e, eci, str_member(q, "rid"),
                              str_member(q, "name"),
                              kval_map_get_str(q, "args"));
        if (kval_is_error(&r))
            out = kval_map_put_str(kval_map(), "error",
                                   kval_cstr(kval_error_msg(&r)));
        else
            out = kval_map_put_str(kval_map(), "result", kval_copy(&r));
        kval_free(r);
    } else {
        out = kval_map_put_str(kval_map(), "error",
                               kval_cstr("bad input line: need event or "
                                         "query"));
    }
    print_json(&out);
    fflush(stdout);
    kval_free(out);
    kval_free(in);
}

int
cmd_replay(int argc, char **argv)
{
    struct opts o;
    if (parse_opts(argc, argv, &o) != 0 || o.n_args != 2)
        return usage_error("replay RULESET.krl[,MORE.krl...] EVENTS.jsonl "
                           "[--db FILE]");
    struct opts mem = o;
    if (mem.db == NULL)
        mem.db = ":memory:";
    struct engine *e = open_engine(&mem);
    if (e == NULL)
        return 1;
    int status = 1;
    char *list = xstrdup(o.args[0]);
    kval root = engine_init(e);
    kval pico = kval_null(), chan = kval_null();
    if (kval_is_error(&root))
        goto out;
    pico = engine_pico_new(e, NULL, NULL);
    if (kval_is_error(&pico))
        goto out;
    const char *pico_id = str_member(&pico, "id");
    chan = engine_channel_new(e, pico_id, NULL);   /* allows everything */
    if (kval_is_error(&chan))
        goto out;
    char *save = NULL;
    for (char *f = strtok_r(list, ",", &save); f != NULL; /* checksrc: allow strtok_r - a local copy */
         f = strtok_r(NULL, ",", &save)) {           /* checksrc: allow strtok_r */
        size_t len;
        char *src = cli_read_file(f, &len);
        if (src == NULL)
            goto out;
        kval r = engine_ruleset_register(e, f, src, len);
        free(src);
        if (!kval_is_error(&r)) {
            kval rid = kval_copy(kval_map_get_str(&r, "rid"));
            kval_free(r);
            r = engine_install(e, pico_id, kval_str_ptr(&rid), NULL);
            kval_free(rid);
        }
        if (kval_is_error(&r)) {
            fprintf(stderr, "picomail: %s: %s\n", f, kval_error_msg(&r));
            kval_free(r);
            goto out;
        }
        kval_free(r);
    }
    size_t len;
    char *text = cli_read_file(o.args[1], &len);
    if (text == NULL)
        goto out;
    const char *eci = str_member(&chan, "eci");
    for (char *line = text; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r')
            p++;
        if (*p != '\0' && *p != '#' && !(p[0] == '/' && p[1] == '/'))
            replay_line(e, eci, p);
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    status = 0;
out:
    if (kval_is_error(&root) || kval_is_error(&pico) || kval_is_error(&chan))
        fprintf(stderr, "picomail: %s\n",
                kval_error_msg(kval_is_error(&root)   ? &root
                               : kval_is_error(&pico) ? &pico
                                                      : &chan));
    kval_free(root);
    kval_free(pico);
    kval_free(chan);
    free(list);
    engine_close(e);
    return status;
}
