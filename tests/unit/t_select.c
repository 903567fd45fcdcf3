/*
 * t_select.c - event expressions as state machines (select.c).
 *
 * Rulesets are compiled with krl_ruleset_compile() and every rule's machine
 * is driven event by event, in rule order, with each rule's state passed
 * through JSON text between events (as the engine stores it).  The tables
 * are the reference engine's own tests (pico-engine test-rulesets
 * event-exp.krl, within.krl and the event parts of scope.krl, with the
 * expectations of their .krl.ts files) and every ee_* conformance case,
 * whose .out files say which directives - hence which rules - each event
 * produced.  Then persistence across a recompile, where errors, the within
 * boundary, salience, damaged states and compile diagnostics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "picomail/arena.h"
#include "picomail/buf.h"
#include "picomail/eval.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/parser.h"
#include "picomail/select.h"
#include "tap.h"

#define CASES_DIR "../shared/conformance/cases"

/* ------------------------------------------------------------------ */
/* A ruleset with a state per rule                                     */

/* The value of a rule's `within` expression (the engine evaluates it). */
struct within_n {
    const char *rule;
    double n;
};

struct world {
    struct krl_ruleset *rs;
    struct krl_instance *inst;
    struct krl_vm *vm;
    struct arena *a;
    const struct ast_ruleset *ast;
    struct sel_machine **m;         /* per rule; NULL without select when */
    kval *state;
    kval *bindings;                 /* of the last event; null if not fired */
    int64_t *within;
    /* the event being matched, for the host */
    const char *domain;
    const char *type;
    const kval *attrs;
    int64_t time;
    bool json_ok;                   /* every state survived JSON */
};

struct where_ctx {
    struct world *w;
    const struct ast_rule *rule;
};

static kval
host_get(void *ctx, struct krl_vm *vm, const char *domain, const char *name)
{
    struct world *w = ctx;
    (void)vm;
    if (strcmp(domain, "event") == 0) {
        if (strcmp(name, "attrs") == 0)
            return kval_copy(w->attrs);
        if (strcmp(name, "name") == 0)
            return kval_cstr(w->type);
        if (strcmp(name, "domain") == 0)
            return kval_cstr(w->domain);
        if (strcmp(name, "time") == 0)
            return kval_number((double)w->time);
    }
    return kval_error("Error: %s:%s is not here", domain, name);
}

static const struct krl_host host = {.get = host_get};

static int
where_cb(void *ctx, const struct ast_ee *prim, const kval *captures,
         kval *err)
{
    struct where_ctx *c = ctx;
    return krl_instance_where(c->w->inst, c->w->vm, c->rule, prim, captures,
                              err);
}

static double
period_ms(enum ast_period p)
{
    switch (p) {
    case AST_PERIOD_SECONDS:
        return 1000;
    case AST_PERIOD_MINUTES:
        return 60000;
    case AST_PERIOD_HOURS:
        return 3600000;
    case AST_PERIOD_DAYS:
        return 86400000;
    case AST_PERIOD_WEEKS:
        return 7 * 86400000.0;
    case AST_PERIOD_MONTHS:
        return 30 * 86400000.0;
    case AST_PERIOD_YEARS:
        return 365 * 86400000.0;
    case AST_PERIOD_NONE:
        break;
    }
    return 1;
}

static void
first_diag(const struct krl_diags *d, char *out, size_t len)
{
    if (d->n == 0)
        snprintf(out, len, "(none)");
    else
        snprintf(out, len, "%d:%d: %s", d->items[0].line, d->items[0].col,
                 d->items[0].msg);
}

static struct world *
world_open(const char *label, const char *src, const struct within_n *wn,
           size_t n_wn)
{
    struct world *w = xcalloc(1, sizeof *w);
    struct krl_diags d;
    struct krl_limits lim;
    char msg[512], name[300];
    kval err = kval_null();

    krl_diags_init(&d);
    w->rs = krl_ruleset_compile(label, src, strlen(src), &d);
    first_diag(&d, msg, sizeof msg);
    snprintf(name, sizeof name, "%s compiles", label);
    t_eq_str(w->rs != NULL ? "(none)" : msg, "(none)", name);
    krl_diags_release(&d);
    if (w->rs == NULL) {
        free(w);
        return NULL;
    }
    krl_limits_default(&lim);
    w->inst = krl_instance_new(w->rs, NULL, &lim, &err);
    kval_free(err);
    w->vm = krl_vm_new(&lim);
    krl_vm_set_host(w->vm, &host, w);
    w->a = arena_new();
    w->ast = krl_ruleset_ast(w->rs);
    w->json_ok = true;

    size_t n = w->ast->n_rules;
    w->m = xcalloc(n + 1, sizeof *w->m);
    w->state = xcalloc(n + 1, sizeof *w->state);
    w->bindings = xcalloc(n + 1, sizeof *w->bindings);
    w->within = xcalloc(n + 1, sizeof *w->within);
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        const struct ast_rule *r = &w->ast->rules[i];
        w->within[i] = -1;
        if (r->select_when == NULL)
            continue;
        krl_diags_init(&d);
        w->m[i] = sel_compile(w->a, r, label, &d);
        if (w->m[i] == NULL) {
            first_diag(&d, msg, sizeof msg);
            printf("# %s: rule %s: %s\n", label, r->name.s, msg);
            ok = false;
        }
        krl_diags_release(&d);
        w->state[i] = w->m[i] != NULL ? sel_initial(w->m[i]) : kval_null();
        if (r->within != NULL) {
            size_t k = 0;
            while (k < n_wn && strcmp(wn[k].rule, r->name.s) != 0)
                k++;
            if (k == n_wn) {
                printf("# %s: no within value for rule %s\n", label,
                       r->name.s);
                ok = false;
                continue;
            }
            w->within[i] = (int64_t)(wn[k].n * period_ms(r->within_period));
        }
    }
    snprintf(name, sizeof name, "%s: every select when compiles", label);
    t_ok(ok && w->inst != NULL, name);
    return w;
}

static void
world_close(struct world *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->ast->n_rules; i++) {
        kval_free(w->state[i]);
        kval_free(w->bindings[i]);
    }
    free(w->m);
    free(w->state);
    free(w->bindings);
    free(w->within);
    arena_free(w->a);
    krl_vm_free(w->vm);
    krl_instance_free(w->inst);
    krl_ruleset_free(w->rs);
    free(w);
}

/* roundtrip - STATE as JSON text and back, as the store keeps it */
static kval
roundtrip(struct world *w, kval state)
{
    char *js = json_to_cstr(&state, JSON_DATA);
    if (js == NULL) {
        w->json_ok = false;
        return state;
    }
    kval back = json_parse(js, strlen(js));
    char *again = json_to_cstr(&back, JSON_DATA);
    if (kval_is_error(&back) || again == NULL || strcmp(js, again) != 0)
        w->json_ok = false;
    free(js);
    free(again);
    kval_free(state);
    return back;
}

/*
 * world_send - one event to every salient rule, in order; OUT gets the
 * rules selected, separated by spaces, each followed by its bindings as
 * JSON when it has setting or aggregator variables ("!" marks an error)
 */
static void
world_send(struct world *w, const char *domain, const char *type,
           const kval *attrs, int64_t time, struct buf *out)
{
    struct sel_event ev = {domain, type, attrs, time};

    w->domain = domain;
    w->type = type;
    w->attrs = attrs;
    w->time = time;
    buf_reset(out);
    for (size_t i = 0; i < w->ast->n_rules; i++) {
        const struct ast_rule *r = &w->ast->rules[i];
        struct where_ctx c = {w, r};
        kval next, b, err = kval_null();

        kval_free(w->bindings[i]);
        w->bindings[i] = kval_null();
        if (w->m[i] == NULL || !sel_salient(w->m[i], domain, type))
            continue;
        w->state[i] = roundtrip(w, w->state[i]);
        int rc = sel_step(w->m[i], w->state[i], &ev, w->within[i], where_cb,
                          &c, &next, &b, &err);
        w->state[i] = next;
        if (rc != 0) {
            if (out->len > 0)
                buf_addc(out, ' ');
            buf_adds(out, r->name.s);
        }
        if (rc < 0)
            buf_printf(out, "!%s", kval_error_msg(&err));
        if (rc == 1 && kval_map_len(&b) > 0) {
            char *js = json_to_cstr(&b, JSON_DATA);
            buf_adds(out, js != NULL ? js : "(unprintable)");
            free(js);
        }
        kval_free(err);
        w->bindings[i] = b;
    }
}

struct step {
    const char *domain;
    const char *type;
    const char *attrs;              /* JSON */
    int64_t time;                   /* 0: any */
    const char *want;
};

static void
run_steps(const char *label, const char *src, const struct within_n *wn,
          size_t n_wn, const struct step *steps, size_t n)
{
    struct world *w = world_open(label, src, wn, n_wn);
    struct buf out;
    char name[300];

    if (w == NULL)
        return;
    buf_init(&out);
    for (size_t i = 0; i < n; i++) {
        const struct step *s = &steps[i];
        kval attrs = json_parse(s->attrs, strlen(s->attrs));
        int64_t time = s->time ? s->time : 1600000000000 + 1000 * (int64_t)i;
        world_send(w, s->domain, s->type, &attrs, time, &out);
        snprintf(name, sizeof name, "%s #%zu %s:%s %s", label, i + 1,
                 s->domain, s->type, s->attrs);
        t_eq_str(out.data, s->want, name);
        kval_free(attrs);
    }
    snprintf(name, sizeof name, "%s: states survive JSON unchanged", label);
    t_ok(w->json_ok, name);
    buf_release(&out);
    world_close(w);
}

/* ------------------------------------------------------------------ */
/* pico-engine test-rulesets/event-exp.krl and event-exp.krl.ts        */

static const char event_exp_krl[] =
    "ruleset io.picolabs.event-exp {\n"
    "    rule before {\n"
    "        select when ee_before a\n"
    "            before\n"
    "            ee_before b\n"
    "\n"
    "        send_directive(\"before\");\n"
    "    }\n"
    "    rule after {\n"
    "        select when ee_after a\n"
    "            after\n"
    "            ee_after b\n"
    "\n"
    "        send_directive(\"after\");\n"
    "    }\n"
    "    rule then {\n"
    "        select when ee_then a\n"
    "            then\n"
    "            ee_then b name re#bob#\n"
    "\n"
    "        send_directive(\"then\");\n"
    "    }\n"
    "    rule and {\n"
    "        select when ee_and a\n"
    "            and\n"
    "            ee_and b\n"
    "\n"
    "        send_directive(\"and\");\n"
    "    }\n"
    "    rule or {\n"
    "        select when ee_or a\n"
    "            or\n"
    "            ee_or b\n"
    "\n"
    "        send_directive(\"or\");\n"
    "    }\n"
    "    rule between {\n"
    "        select when ee_between a between(\n"
    "            ee_between b,\n"
    "            ee_between c\n"
    "        )\n"
    "\n"
    "        send_directive(\"between\");\n"
    "    }\n"
    "    rule not_between {\n"
    "        select when ee_not_between a not between(\n"
    "            ee_not_between b,\n"
    "            ee_not_between c\n"
    "        )\n"
    "\n"
    "        send_directive(\"not between\");\n"
    "    }\n"
    "    rule and_or {\n"
    "        select when (\n"
    "                ee_andor a\n"
    "                and\n"
    "                ee_andor b\n"
    "            )\n"
    "            or\n"
    "            ee_andor c\n"
    "\n"
    "        send_directive(\"(a and b) or c\");\n"
    "    }\n"
    "    rule or_and {\n"
    "        select when ee_orand a\n"
    "            and\n"
    "            (\n"
    "                ee_orand b\n"
    "                or\n"
    "                ee_orand c\n"
    "            )\n"
    "\n"
    "        send_directive(\"a and (b or c)\");\n"
    "    }\n"
    "    rule before_n {\n"
    "        select when before(\n"
    "            ee_before_n a,\n"
    "            ee_before_n b,\n"
    "            ee_before_n c\n"
    "        )\n"
    "\n"
    "        send_directive(\"before_n\");\n"
    "    }\n"
    "    rule after_n {\n"
    "        select when after(\n"
    "            ee_after_n a,\n"
    "            ee_after_n b,\n"
    "            ee_after_n c\n"
    "        )\n"
    "\n"
    "        send_directive(\"after_n\");\n"
    "    }\n"
    "    rule then_n {\n"
    "        select when then(\n"
    "            ee_then_n a,\n"
    "            ee_then_n b,\n"
    "            ee_then_n c\n"
    "        )\n"
    "\n"
    "        send_directive(\"then_n\");\n"
    "    }\n"
    "    rule and_n {\n"
    "        select when and(\n"
    "            ee_and_n a,\n"
    "            ee_and_n b,\n"
    "            ee_and_n c\n"
    "        )\n"
    "\n"
    "        send_directive(\"and_n\");\n"
    "    }\n"
    "    rule or_n {\n"
    "        select when or(\n"
    "            ee_or_n a,\n"
    "            ee_or_n b,\n"
    "            ee_or_n c,\n"
    "            ee_or_n d\n"
    "        )\n"
    "\n"
    "        send_directive(\"or_n\");\n"
    "    }\n"
    "    rule any {\n"
    "        select when any 2 (\n"
    "            ee_any a,\n"
    "            ee_any b,\n"
    "            ee_any c,\n"
    "            ee_any d\n"
    "        )\n"
    "\n"
    "        send_directive(\"any\");\n"
    "    }\n"
    "    rule count {\n"
    "        select when count 3 (\n"
    "            ee_count a\n"
    "        )\n"
    "\n"
    "        send_directive(\"count\");\n"
    "    }\n"
    "    rule repeat {\n"
    "        select when repeat 3 (\n"
    "            ee_repeat a name re#bob#\n"
    "        )\n"
    "\n"
    "        send_directive(\"repeat\");\n"
    "    }\n"
    "    rule count_max {\n"
    "        select when count 3 (\n"
    "            ee_count_max a b re#(\\d+)#\n"
    "        ) max(m)\n"
    "\n"
    "        send_directive(\"count_max\", {\"m\": m});\n"
    "    }\n"
    "    rule repeat_min {\n"
    "        select when repeat 3 (\n"
    "            ee_repeat_min a b re#(\\d+)#\n"
    "        ) min(m)\n"
    "\n"
    "        send_directive(\"repeat_min\", {\"m\": m});\n"
    "    }\n"
    "    rule repeat_sum {\n"
    "        select when repeat 3 (\n"
    "            ee_repeat_sum a b re#(\\d+)#\n"
    "        ) sum(m)\n"
    "\n"
    "        send_directive(\"repeat_sum\", {\"m\": m});\n"
    "    }\n"
    "    rule repeat_avg {\n"
    "        select when repeat 3 (\n"
    "            ee_repeat_avg a b re#(\\d+)#\n"
    "        ) avg(m)\n"
    "\n"
    "        send_directive(\"repeat_avg\", {\"m\": m});\n"
    "    }\n"
    "    rule repeat_push {\n"
    "        select when repeat 3 (\n"
    "            ee_repeat_push a b re#(\\d+)#\n"
    "        ) push(m)\n"
    "\n"
    "        send_directive(\"repeat_push\", {\"m\": m});\n"
    "    }\n"
    "    rule repeat_push_multi {\n"
    "        select when repeat 5 (\n"
    "            ee_repeat_push_multi a\n"
    "                a re#(\\d+)#\n"
    "                b re#(\\d+) (.*)#\n"
    "        ) push(a, b, c, d)\n"
    "\n"
    "        send_directive(\"repeat_push_multi\", {\n"
    "            \"a\": a,\n"
    "            \"b\": b,\n"
    "            \"c\": c,\n"
    "            \"d\": d\n"
    "        });\n"
    "    }\n"
    "    rule repeat_sum_multi {\n"
    "        select when repeat 3 (\n"
    "            ee_repeat_sum_multi a\n"
    "                a re#(\\d+)#\n"
    "                b re#(\\d+)#\n"
    "        ) sum(a, b)\n"
    "\n"
    "        send_directive(\"repeat_sum_multi\", {\n"
    "            \"a\": a,\n"
    "            \"b\": b\n"
    "        });\n"
    "    }\n"
    "    rule or_duppath {\n"
    "        select when (\n"
    "                ee_or_duppath a\n"
    "                before\n"
    "                ee_or_duppath a\n"
    "            )\n"
    "            or\n"
    "            ee_or_duppath a\n"
    "\n"
    "        send_directive(\"(a before a) or a\");\n"
    "    }\n"
    "    rule notbet_duppath {\n"
    "        select when ee_notbet_duppath a not between(\n"
    "            ee_notbet_duppath b,\n"
    "            ee_notbet_duppath a\n"
    "        )\n"
    "\n"
    "        send_directive(\"a not between (b, a)\");\n"
    "    }\n"
    "    rule ab_or_b {\n"
    "        select when (\n"
    "                ee_ab_or_b a\n"
    "                and\n"
    "                ee_ab_or_b b\n"
    "            )\n"
    "            or\n"
    "            ee_ab_or_b b\n"
    "\n"
    "        send_directive(\"(a and b) or b\");\n"
    "    }\n"
    "    rule ab_or_ca {\n"
    "        select when (\n"
    "                ee_ab_or_ca a\n"
    "                and\n"
    "                ee_ab_or_ca b\n"
    "            )\n"
    "            or\n"
    "            (\n"
    "                ee_ab_or_ca c\n"
    "                and\n"
    "                ee_ab_or_ca a\n"
    "            )\n"
    "\n"
    "        send_directive(\"(a and b) or (c and a)\");\n"
    "    }\n"
    "}\n";

static const struct step event_exp_steps[] = {
    {"ee_before", "a", "{}", 0, ""},
    {"ee_before", "b", "{}", 0, "before"},
    {"ee_before", "b", "{}", 0, ""},
    {"ee_before", "b", "{}", 0, ""},
    {"ee_before", "a", "{}", 0, ""},
    {"ee_before", "a", "{}", 0, ""},
    {"ee_before", "c", "{}", 0, ""},
    {"ee_before", "b", "{}", 0, "before"},
    {"ee_after", "a", "{}", 0, ""},
    {"ee_after", "b", "{}", 0, ""},
    {"ee_after", "a", "{}", 0, "after"},
    {"ee_after", "a", "{}", 0, ""},
    {"ee_after", "a", "{}", 0, ""},
    {"ee_after", "b", "{}", 0, ""},
    {"ee_after", "c", "{}", 0, ""},
    {"ee_after", "a", "{}", 0, "after"},
    {"ee_then", "a", "{\"name\":\"bob\"}", 0, ""},
    {"ee_then", "b", "{\"name\":\"bob\"}", 0, "then"},
    {"ee_then", "b", "{\"name\":\"bob\"}", 0, ""},
    {"ee_then", "a", "{\"name\":\"bob\"}", 0, ""},
    {"ee_then", "b", "{\"name\":\"...\"}", 0, ""},
    {"ee_then", "b", "{\"name\":\"bob\"}", 0, ""},
    {"ee_and", "a", "{}", 0, ""},
    {"ee_and", "c", "{}", 0, ""},
    {"ee_and", "b", "{}", 0, "and"},
    {"ee_and", "b", "{}", 0, ""},
    {"ee_and", "a", "{}", 0, "and"},
    {"ee_and", "b", "{}", 0, ""},
    {"ee_and", "b", "{}", 0, ""},
    {"ee_and", "b", "{}", 0, ""},
    {"ee_and", "a", "{}", 0, "and"},
    {"ee_or", "a", "{}", 0, "or"},
    {"ee_or", "b", "{}", 0, "or"},
    {"ee_or", "c", "{}", 0, ""},
    {"ee_between", "b", "{}", 0, ""},
    {"ee_between", "a", "{}", 0, ""},
    {"ee_between", "c", "{}", 0, "between"},
    {"ee_between", "b", "{}", 0, ""},
    {"ee_between", "a", "{}", 0, ""},
    {"ee_between", "a", "{}", 0, ""},
    {"ee_between", "c", "{}", 0, "between"},
    {"ee_between", "b", "{}", 0, ""},
    {"ee_between", "a", "{}", 0, ""},
    {"ee_between", "b", "{}", 0, ""},
    {"ee_between", "c", "{}", 0, "between"},
    {"ee_not_between", "b", "{}", 0, ""},
    {"ee_not_between", "c", "{}", 0, "not_between"},
    {"ee_not_between", "b", "{}", 0, ""},
    {"ee_not_between", "a", "{}", 0, ""},
    {"ee_not_between", "c", "{}", 0, ""},
    {"ee_not_between", "b", "{}", 0, ""},
    {"ee_not_between", "c", "{}", 0, "not_between"},
    {"ee_not_between", "c", "{}", 0, ""},
    {"ee_andor", "c", "{}", 0, "and_or"},
    {"ee_andor", "a", "{}", 0, ""},
    {"ee_andor", "c", "{}", 0, ""},
    {"ee_andor", "b", "{}", 0, "and_or"},
    {"ee_orand", "a", "{}", 0, ""},
    {"ee_orand", "b", "{}", 0, "or_and"},
    {"ee_orand", "c", "{}", 0, ""},
    {"ee_orand", "a", "{}", 0, "or_and"},
    {"ee_and_n", "a", "{}", 0, ""},
    {"ee_and_n", "c", "{}", 0, ""},
    {"ee_and_n", "b", "{}", 0, "and_n"},
    {"ee_or_n", "a", "{}", 0, "or_n"},
    {"ee_or_n", "d", "{}", 0, "or_n"},
    {"ee_any", "a", "{}", 0, ""},
    {"ee_any", "a", "{}", 0, ""},
    {"ee_any", "b", "{}", 0, "any"},
    {"ee_any", "c", "{}", 0, ""},
    {"ee_any", "a", "{}", 0, "any"},
    {"ee_count", "a", "{}", 0, ""},
    {"ee_count", "a", "{}", 0, ""},
    {"ee_count", "a", "{}", 0, "count"},
    {"ee_count", "a", "{}", 0, ""},
    {"ee_count", "a", "{}", 0, ""},
    {"ee_count", "a", "{}", 0, "count"},
    {"ee_count", "a", "{}", 0, ""},
    {"ee_repeat", "a", "{\"name\":\"bob\"}", 0, ""},
    {"ee_repeat", "a", "{\"name\":\"bob\"}", 0, ""},
    {"ee_repeat", "a", "{\"name\":\"bob\"}", 0, "repeat"},
    {"ee_repeat", "a", "{\"name\":\"bob\"}", 0, "repeat"},
    {"ee_repeat", "a", "{\"name\":\"...\"}", 0, ""},
    {"ee_repeat", "a", "{\"name\":\"bob\"}", 0, ""},
    {"ee_count_max", "a", "{\"b\":\"3\"}", 0, ""},
    {"ee_count_max", "a", "{\"b\":\"8\"}", 0, ""},
    {"ee_count_max", "a", "{\"b\":\"5\"}", 0, "count_max{\"m\":8}"},
    {"ee_count_max", "a", "{\"b\":\"1\"}", 0, ""},
    {"ee_count_max", "a", "{\"b\":\"0\"}", 0, ""},
    {"ee_count_max", "a", "{\"b\":\"0\"}", 0, "count_max{\"m\":1}"},
    {"ee_count_max", "a", "{\"b\":\"0\"}", 0, ""},
    {"ee_count_max", "a", "{\"b\":\"0\"}", 0, ""},
    {"ee_count_max", "a", "{\"b\":\"7\"}", 0, "count_max{\"m\":7}"},
    {"ee_repeat_min", "a", "{\"b\":\"5\"}", 0, ""},
    {"ee_repeat_min", "a", "{\"b\":\"3\"}", 0, ""},
    {"ee_repeat_min", "a", "{\"b\":\"4\"}", 0, "repeat_min{\"m\":3}"},
    {"ee_repeat_min", "a", "{\"b\":\"5\"}", 0, "repeat_min{\"m\":3}"},
    {"ee_repeat_min", "a", "{\"b\":\"6\"}", 0, "repeat_min{\"m\":4}"},
    {"ee_repeat_min", "a", "{\"b\":null}", 0, ""},
    {"ee_repeat_min", "a", "{\"b\":\"3\"}", 0, ""},
    {"ee_repeat_min", "a", "{\"b\":\"8\"}", 0, ""},
    {"ee_repeat_min", "a", "{\"b\":\"1\"}", 0, "repeat_min{\"m\":1}"},
    {"ee_repeat_min", "a", "{\"b\":\"2\"}", 0, "repeat_min{\"m\":1}"},
    {"ee_repeat_min", "a", "{\"b\":\"3\"}", 0, "repeat_min{\"m\":1}"},
    {"ee_repeat_min", "a", "{\"b\":\"4\"}", 0, "repeat_min{\"m\":2}"},
    {"ee_repeat_min", "a", "{\"b\":\"5\"}", 0, "repeat_min{\"m\":3}"},
    {"ee_repeat_min", "a", "{\"b\":\"6\"}", 0, "repeat_min{\"m\":4}"},
    {"ee_repeat_min", "a", "{\"b\":\"7\"}", 0, "repeat_min{\"m\":5}"},
    {"ee_repeat_sum", "a", "{\"b\":\"1\"}", 0, ""},
    {"ee_repeat_sum", "a", "{\"b\":\"2\"}", 0, ""},
    {"ee_repeat_sum", "a", "{\"b\":\"3\"}", 0, "repeat_sum{\"m\":6}"},
    {"ee_repeat_sum", "a", "{\"b\":\"4\"}", 0, "repeat_sum{\"m\":9}"},
    {"ee_repeat_avg", "a", "{\"b\":\"1\"}", 0, ""},
    {"ee_repeat_avg", "a", "{\"b\":\"2\"}", 0, ""},
    {"ee_repeat_avg", "a", "{\"b\":\"3\"}", 0, "repeat_avg{\"m\":2}"},
    {"ee_repeat_avg", "a", "{\"b\":\"100\"}", 0, "repeat_avg{\"m\":35}"},
    {"ee_repeat_push", "a", "{\"b\":\"1\"}", 0, ""},
    {"ee_repeat_push", "a", "{\"b\":\"2\"}", 0, ""},
    {"ee_repeat_push", "a", "{\"b\":\"3\"}", 0,
     "repeat_push{\"m\":[\"1\",\"2\",\"3\"]}" },
    {"ee_repeat_push", "a", "{\"b\":\"4\"}", 0,
     "repeat_push{\"m\":[\"2\",\"3\",\"4\"]}" },
    {"ee_repeat_push", "a", "{\"b\":\"five\"}", 0, ""},
    {"ee_repeat_push", "a", "{\"b\":\"6\"}", 0, ""},
    {"ee_repeat_push", "a", "{\"b\":\"7\"}", 0, ""},
    {"ee_repeat_push", "a", "{\"b\":\"8\"}", 0,
     "repeat_push{\"m\":[\"6\",\"7\",\"8\"]}" },
    {"ee_repeat_push_multi", "a", "{\"a\":\"1\",\"b\":\"2 three\"}", 0, ""},
    {"ee_repeat_push_multi", "a", "{\"a\":\"2\",\"b\":\"3 four\"}", 0, ""},
    {"ee_repeat_push_multi", "a", "{\"a\":\"3\",\"b\":\"4 five\"}", 0, ""},
    {"ee_repeat_push_multi", "a", "{\"a\":\"4\",\"b\":\"5 six\"}", 0, ""},
    {"ee_repeat_push_multi", "a", "{\"a\":\"5\",\"b\":\"6 seven\"}", 0,
     "repeat_push_multi{\"a\":[\"1\",\"2\",\"3\",\"4\",\"5\"],\"b\":[\"2\","
     "\"3\",\"4\",\"5\",\"6\"],\"c\":[\"three\",\"four\",\"five\",\"six\",\""
     "seven\"],\"d\":[null,null,null,null,null]}" },
    {"ee_repeat_sum_multi", "a", "{\"a\":\"1\",\"b\":\"2\"}", 0, ""},
    {"ee_repeat_sum_multi", "a", "{\"a\":\"2\",\"b\":\"3\"}", 0, ""},
    {"ee_repeat_sum_multi", "a", "{\"a\":\"3\",\"b\":\"4\"}", 0,
     "repeat_sum_multi{\"a\":6,\"b\":9}" },
    {"ee_or_duppath", "a", "{}", 0, "or_duppath"},
    {"ee_or_duppath", "a", "{}", 0, "or_duppath"},
    {"ee_notbet_duppath", "a", "{}", 0, ""},
    {"ee_notbet_duppath", "b", "{}", 0, ""},
    {"ee_notbet_duppath", "a", "{}", 0, "notbet_duppath"},
    {"ee_ab_or_b", "b", "{}", 0, "ab_or_b"},
    {"ee_ab_or_b", "a", "{}", 0, ""},
    {"ee_ab_or_b", "b", "{}", 0, "ab_or_b"},
    {"ee_ab_or_b", "b", "{}", 0, "ab_or_b"},
    {"ee_ab_or_b", "a", "{}", 0, ""},
    {"ee_ab_or_ca", "a", "{}", 0, ""},
    {"ee_ab_or_ca", "c", "{}", 0, "ab_or_ca"},
    {"ee_ab_or_ca", "a", "{}", 0, ""},
    {"ee_ab_or_ca", "b", "{}", 0, "ab_or_ca"},
};

/* ------------------------------------------------------------------ */
/* pico-engine test-rulesets/within.krl and within.krl.ts              */

static const char within_krl[] =
    "ruleset io.picolabs.within {\n"
    "    rule foo {\n"
    "        select when foo a\n"
    "            before\n"
    "            foo b\n"
    "            within 5 minutes\n"
    "\n"
    "        send_directive(\"foo\");\n"
    "    }\n"
    "    rule bar {\n"
    "        select when bar a\n"
    "            before\n"
    "            bar b\n"
    "            within 1 + 3 second\n"
    "\n"
    "        send_directive(\"bar\");\n"
    "    }\n"
    "    rule baz {\n"
    "        select when baz a\n"
    "            or\n"
    "            (\n"
    "                baz b\n"
    "                and\n"
    "                baz c\n"
    "            )\n"
    "            within 1 year\n"
    "\n"
    "        send_directive(\"baz\");\n"
    "    }\n"
    "    rule qux {\n"
    "        select when repeat 3 (\n"
    "            qux a b re#c#\n"
    "        )\n"
    "            within 2 seconds\n"
    "\n"
    "        send_directive(\"qux\");\n"
    "    }\n"
    "}\n";

static const struct within_n within_ns[] = {
    {"foo", 5}, {"bar", 1 + 3}, {"baz", 1}, {"qux", 2},
};

#define T0 10000000000000
static const struct step within_steps[] = {
    {"foo", "a", "{}", T0, ""},
    {"foo", "b", "{}", T0 + 1, "foo"},
    {"foo", "a", "{}", T0 + 2, ""},
    {"foo", "b", "{}", T0 + 555555, ""},
    {"foo", "a", "{}", T0 + 555556, ""},
    {"foo", "b", "{}", T0 + 255557, "foo"},

    {"bar", "a", "{}", T0, ""},
    {"bar", "b", "{}", T0 + 3999, "bar"},
    {"bar", "a", "{}", T0, ""},
    {"bar", "b", "{}", T0 + 4000, "bar"},
    {"bar", "a", "{}", T0, ""},
    {"bar", "b", "{}", T0 + 4001, ""},

    {"baz", "a", "{}", T0, "baz"},
    {"baz", "b", "{}", T0, ""},
    {"baz", "c", "{}", 10031536000000, "baz"},
    {"baz", "c", "{}", T0, ""},
    {"baz", "b", "{}", 10040000000000, ""},
    {"baz", "c", "{}", 10050000000000, "baz"},

    {"qux", "a", "{\"b\":\"c\"}", T0, ""},
    {"qux", "a", "{\"b\":\"c\"}", T0 + 1, ""},
    {"qux", "a", "{\"b\":\"c\"}", T0 + 1002, "qux"},
    {"qux", "a", "{\"b\":\"c\"}", T0 + 2003, ""},
    {"qux", "a", "{\"b\":\"c\"}", T0 + 2004, ""},
    {"qux", "a", "{\"b\":\"c\"}", T0 + 2005, "qux"},
    {"qux", "a", "{\"b\":\"c\"}", T0 + 2006, "qux"},
    {"qux", "a", "{\"b\":\"z\"}", T0 + 2007, ""},
    {"qux", "a", "{\"b\":\"c\"}", T0 + 2008, ""},
    {"qux", "a", "{\"b\":\"c\"}", T0 + 2009, ""},
    {"qux", "a", "{\"b\":\"c\"}", T0 + 4008, "qux"},
};

/* ------------------------------------------------------------------ */
/* pico-engine test-rulesets/scope.krl (the rules with settings) and   */
/* scope.krl.ts: a variable of the branch that did not match is null   */
/* (and JSON drops it), settings last until the rule fires or times out */

static const char scope_krl[] =
    "ruleset io.picolabs.scope {\n"
    "    rule eventOr {\n"
    "        select when scope eventOr0 name re#^(.*)$# setting(name0)\n"
    "            or\n"
    "            scope eventOr1 name re#^(.*)$# setting(name1)\n"
    "        send_directive(\"eventOr\",\n"
    "            {\"name0\": name0, \"name1\": name1});\n"
    "    }\n"
    "    rule eventAnd {\n"
    "        select when scope eventAnd0 name re#^(.*)$# setting(name0)\n"
    "            and\n"
    "            scope eventAnd1 name re#^(.*)$# setting(name1)\n"
    "        send_directive(\"eventAnd\",\n"
    "            {\"name0\": name0, \"name1\": name1});\n"
    "    }\n"
    "    rule eventWithin {\n"
    "        select when (\n"
    "                scope eventWithin0\n"
    "                or\n"
    "                scope eventWithin1 name re#^(.*)$# setting(name1)\n"
    "            )\n"
    "            and\n"
    "            (\n"
    "                scope eventWithin2 name re#^(.*)$# setting(name2)\n"
    "                or\n"
    "                scope eventWithin3\n"
    "            )\n"
    "            within 1 second\n"
    "        send_directive(\"eventWithin\",\n"
    "            {\"name1\": name1, \"name2\": name2});\n"
    "    }\n"
    "}\n";

static const struct within_n scope_ns[] = {{"eventWithin", 1}};

static const struct step scope_steps[] = {
    {"scope", "eventOr0", "{\"name\":\"000\"}", 0,
     "eventOr{\"name0\":\"000\"}"},
    {"scope", "eventOr1", "{\"name\":\"111\"}", 0,
     "eventOr{\"name1\":\"111\"}"},
    {"scope", "eventOr0", "{}", 0, "eventOr{\"name0\":\"\"}"},
    {"scope", "eventOr1", "{\"name\":\"?\"}", 0, "eventOr{\"name1\":\"?\"}"},
    {"scope", "eventAnd0", "{\"name\":\"000\"}", 0, ""},
    {"scope", "eventAnd1", "{\"name\":\"111\"}", 0,
     "eventAnd{\"name0\":\"000\",\"name1\":\"111\"}"},
    {"scope", "eventWithin1", "{\"name\":\"111\"}", T0, ""},
    {"scope", "eventWithin2", "{\"name\":\"222\"}", T0 + 7,
     "eventWithin{\"name1\":\"111\",\"name2\":\"222\"}"},
    {"scope", "eventWithin1", "{\"name\":\"111\"}", T0, ""},
    {"scope", "eventWithin0", "{}", T0 + 7000, ""},
    {"scope", "eventWithin2", "{\"name\":\"222\"}", T0 + 7007,
     "eventWithin{\"name2\":\"222\"}"},
    {"scope", "eventWithin1", "{\"name\":\"aaa\"}", T0 + 7008, ""},
    {"scope", "eventWithin3", "{}", T0 + 7009,
     "eventWithin{\"name1\":\"aaa\"}"},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* The ee_* conformance cases                                          */

static char *
read_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    struct buf b;
    char chunk[8192];
    size_t n;

    if (fp == NULL)
        return NULL;
    buf_init(&b);
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        buf_add(&b, chunk, n);
    fclose(fp);
    return buf_take(&b, NULL);
}

/* directive_of - the name RULE's first action sends as a directive */
static const char *
directive_of(const struct ast_rule *r)
{
    const struct ast_action *act;

    if (r->actions == NULL || r->actions->n_actions == 0)
        return NULL;
    act = &r->actions->actions[0];
    if (act->n_args == 0 || act->args[0].value->kind != AST_STRING)
        return NULL;
    return act->args[0].value->u.string.s;
}

/* next_line - the next non-empty line of *P (NUL-terminated in place) */
static char *
next_line(char **p)
{
    char *s = *p;
    while (*s == '\n')
        s++;
    if (*s == '\0')
        return NULL;
    char *e = strchr(s, '\n');
    if (e != NULL) {
        *e = '\0';
        *p = e + 1;
    } else {
        *p = s + strlen(s);
    }
    return s;
}

/* The values of the cases' within expressions (checked against the
 * evaluator's krl_rule_within_ms). */
static const struct within_n conf_ns[] = {
    {"w_seconds", 3 + 1}, {"w_minutes", 2}, {"w_repeat", 10},
    {"w_setting", 1},
};

/*
 * run_case - replay conformance case NAME: which rules are selected must
 * be exactly those whose directive the reference sent, and running the
 * selected rules with their bindings must send the very directives
 * recorded (settings, aggregates, event:name ...).
 */
static void
run_case(const char *name)
{
    char path[512], label[600];
    char *krl, *jsonl, *out;
    struct world *w;
    struct krl_limits lim;
    struct buf got, want, text;

    snprintf(path, sizeof path, "%s/%s.krl", CASES_DIR, name);
    krl = read_file(path);
    snprintf(path, sizeof path, "%s/%s.jsonl", CASES_DIR, name);
    jsonl = read_file(path);
    snprintf(path, sizeof path, "%s/%s.out", CASES_DIR, name);
    out = read_file(path);
    snprintf(label, sizeof label, "%s: files read", name);
    t_ok(krl != NULL && jsonl != NULL && out != NULL, label);
    if (krl == NULL || jsonl == NULL || out == NULL)
        goto done;
    w = world_open(name, krl, conf_ns, N_OF(conf_ns));
    if (w == NULL)
        goto done;

    /* the within limits the engine would compute */
    krl_limits_default(&lim);
    for (size_t i = 0; i < w->ast->n_rules; i++) {
        int64_t ms = -1;
        kval err = kval_null();
        if (w->ast->rules[i].select_when == NULL)
            continue;
        int rc = krl_rule_within_ms(w->inst, w->vm, &w->ast->rules[i], &ms,
                                    &err);
        snprintf(label, sizeof label, "%s: within of rule %s", name,
                 w->ast->rules[i].name.s);
        t_eq_int(rc == 0 ? ms : -99, w->within[i], label);
        kval_free(err);
    }

    buf_init(&got);
    buf_init(&want);
    buf_init(&text);
    char *pj = jsonl, *po = out, *line;
    size_t k = 0;
    while ((line = next_line(&pj)) != NULL) {
        char *oline = next_line(&po);
        kval ev = json_parse(line, strlen(line));
        kval rec = oline != NULL ? json_parse(oline, strlen(oline))
                                 : kval_null();
        const kval *e = kval_kind(&ev) == KV_MAP
                            ? kval_map_get_str(&ev, "event") : NULL;
        const kval *d = e != NULL ? kval_map_get_str(e, "domain") : NULL;
        const kval *t = e != NULL ? kval_map_get_str(e, "type") : NULL;
        const kval *at = e != NULL ? kval_map_get_str(e, "attrs") : NULL;
        const kval *tm = e != NULL ? kval_map_get_str(e, "time") : NULL;
        const kval *dirs = kval_kind(&rec) == KV_MAP
                               ? kval_map_get_str(&rec, "directives") : NULL;
        k++;
        snprintf(label, sizeof label, "%s #%zu: event and record read",
                 name, k);
        t_ok(d != NULL && t != NULL && dirs != NULL &&
                 kval_kind(dirs) == KV_ARRAY, label);
        if (d == NULL || t == NULL || dirs == NULL ||
            kval_kind(dirs) != KV_ARRAY) {
            kval_free(ev);
            kval_free(rec);
            continue;
        }
        kval empty = kval_map();
        int64_t time = tm != NULL && kval_kind(tm) == KV_NUMBER
                           ? (int64_t)kval_get_number(tm)
                           : 1600000000000 + 1000 * (int64_t)k;
        /* a vm per event, as the engine has: directives start empty */
        krl_vm_free(w->vm);
        w->vm = krl_vm_new(&lim);
        krl_vm_set_host(w->vm, &host, w);
        world_send(w, kval_str_ptr(d), kval_str_ptr(t),
                   at != NULL ? at : &empty, time, &text);

        /* selected rules against the rules of the recorded directives */
        buf_reset(&got);
        buf_reset(&want);
        for (size_t i = 0; i < w->ast->n_rules; i++) {
            const char *dn = directive_of(&w->ast->rules[i]);
            bool sent = false;
            for (size_t j = 0; j < kval_array_len(dirs) && dn != NULL; j++) {
                const kval *nm = kval_map_get_str(kval_array_get(dirs, j),
                                                  "name");
                sent = sent || (nm != NULL && kval_kind(nm) == KV_STRING &&
                                strcmp(kval_str_ptr(nm), dn) == 0);
            }
            if (sent)
                buf_printf(&want, "%s%s", want.len ? " " : "",
                           w->ast->rules[i].name.s);
            if (kval_kind(&w->bindings[i]) == KV_MAP)
                buf_printf(&got, "%s%s", got.len ? " " : "",
                           w->ast->rules[i].name.s);
        }
        snprintf(label, sizeof label, "%s #%zu %s:%s selects", name, k,
                 kval_str_ptr(d), kval_str_ptr(t));
        t_eq_str(got.data, want.data, label);

        /* the selected rules' directives, with their bindings */
        for (size_t i = 0; i < w->ast->n_rules; i++) {
            kval err = kval_null();
            if (kval_kind(&w->bindings[i]) != KV_MAP)
                continue;
            if (krl_rule_run(w->inst, w->vm, &w->ast->rules[i],
                             &w->bindings[i], &err) == KRL_RULE_ERROR)
                printf("# %s: rule %s: %s\n", name, w->ast->rules[i].name.s,
                       kval_error_msg(&err));
            kval_free(err);
        }
        /* name and options: the record has no meta */
        const kval *sent = krl_vm_directives(w->vm);
        kval plain = kval_array();
        for (size_t j = 0; j < kval_array_len(sent); j++) {
            const kval *x = kval_array_get(sent, j);
            const kval *nm = kval_map_get_str(x, "name");
            const kval *op = kval_map_get_str(x, "options");
            kval y = kval_map();
            y = kval_map_put_str(y, "name",
                                 nm != NULL ? kval_copy(nm) : kval_null());
            y = kval_map_put_str(y, "options",
                                 op != NULL ? kval_copy(op) : kval_null());
            plain = kval_array_append(plain, y);
        }
        char *g = json_to_cstr(&plain, JSON_DATA);
        kval_free(plain);
        char *r = json_to_cstr(dirs, JSON_DATA);
        snprintf(label, sizeof label, "%s #%zu %s:%s directives", name, k,
                 kval_str_ptr(d), kval_str_ptr(t));
        t_eq_str(g, r, label);
        free(g);
        free(r);
        kval_free(empty);
        kval_free(ev);
        kval_free(rec);
    }
    snprintf(label, sizeof label, "%s: as many records as events", name);
    t_ok(next_line(&po) == NULL, label);
    snprintf(label, sizeof label, "%s: states survive JSON unchanged", name);
    t_ok(w->json_ok, label);
    buf_release(&got);
    buf_release(&want);
    buf_release(&text);
    world_close(w);
done:
    free(krl);
    free(jsonl);
    free(out);
}

static void
test_conformance(void)
{
    static const char *const cases[] = {
        "ee_between_any", "ee_compound", "ee_count_repeat", "ee_grouping",
        "ee_primitive", "ee_variadic", "ee_within",
    };
    FILE *fp = fopen(CASES_DIR "/ee_compound.krl", "rb");

    if (fp == NULL) {
        printf("# %s not found: ee_* conformance skipped\n", CASES_DIR);
        return;
    }
    fclose(fp);
    for (size_t i = 0; i < N_OF(cases); i++)
        run_case(cases[i]);
}

/* ------------------------------------------------------------------ */
/* Direct use of the machine                                           */

/* A ruleset of one rule, its AST and its machine. */
struct one {
    struct krl_ruleset *rs;
    struct arena *a;
    const struct ast_rule *rule;
    struct sel_machine *m;
    char diag[512];
};

static bool
one_open(struct one *o, const char *select)
{
    struct krl_diags d;
    struct buf src;

    memset(o, 0, sizeof *o);
    buf_init(&src);
    buf_printf(&src, "ruleset t {\n  rule r {\n    select when %s\n"
               "    send_directive(\"r\")\n  }\n}\n", select);
    krl_diags_init(&d);
    o->rs = krl_ruleset_compile("t.krl", src.data, src.len, &d);
    buf_release(&src);
    first_diag(&d, o->diag, sizeof o->diag);
    krl_diags_release(&d);
    if (o->rs == NULL)
        return false;
    o->a = arena_new();
    o->rule = &krl_ruleset_ast(o->rs)->rules[0];
    krl_diags_init(&d);
    o->m = sel_compile(o->a, o->rule, "t.krl", &d);
    first_diag(&d, o->diag, sizeof o->diag);
    krl_diags_release(&d);
    return o->m != NULL;
}

static void
one_close(struct one *o)
{
    arena_free(o->a);
    krl_ruleset_free(o->rs);
}

/* step - feed DOMAIN:TYPE (attrs ATTRS, JSON) at TIME; the result code */
static int
step(const struct one *o, kval *state, const char *domain, const char *type,
     const char *attrs, int64_t time, int64_t within_ms, kval *bindings)
{
    kval a = json_parse(attrs, strlen(attrs));
    struct sel_event ev = {domain, type, &a, time};
    kval next, b, err = kval_null();
    int rc = sel_step(o->m, *state, &ev, within_ms, NULL, NULL, &next, &b,
                      &err);
    *state = next;
    if (bindings != NULL)
        *bindings = b;
    else
        kval_free(b);
    kval_free(err);
    kval_free(a);
    return rc;
}

static char *
to_json(const kval *v)
{
    char *s = json_to_cstr(v, JSON_DATA);
    return s != NULL ? s : xstrdup("(unprintable)");
}

static void
test_diagnostics(void)
{
    static const struct {
        const char *select;
        const char *want;       /* "" compiles; else a part of the message */
        size_t n_salient;
    } cases[] = {
        {"any 3 (d a, d b, d c)", "`any N` expects N from 0 to 2", 0},
        {"any 4 (d a, d b, d c)", "`any N` expects N from 0 to 2", 0},
        {"any 2 (d a, d b, d c)", "", 3},
        {"any 1 (d a, d b)", "", 2},
        {"any 0 (d a, d b)", "", 0}, /* never salient, as the reference */
        {"count 0 (d a)", "`count N` expects N of at least 1", 0},
        {"repeat 0 (d a)", "`repeat N` expects N of at least 1", 0},
        {"count 1001 (d a)", "`count N` expects N from 0 to 1000", 0},
        {"count 1000 (d a)", "", 1},
        {"and(d a, d b, d c, d d, d e, d f, d g)",
         "The event expression of rule r is too large", 0},
        {"and(d a, d b, d c, d d, d e, d f)", "", 6},
        {"d a or d b before d c", "", 3},
        {"d a and d a", "", 1},
        {"d a x re#1# and d a", "", 1},
        {"(d a or e b) between(f c, d a)", "", 3},
    };
    char name[300];

    for (size_t i = 0; i < N_OF(cases); i++) {
        struct one o;
        clock_t t0 = clock();
        bool ok = one_open(&o, cases[i].select);
        double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        snprintf(name, sizeof name, "compile %s", cases[i].select);
        if (cases[i].want[0] == '\0') {
            t_eq_str(ok ? "(compiled)" : o.diag, "(compiled)", name);
            snprintf(name, sizeof name, "salience of %s", cases[i].select);
            t_eq_int(ok ? sel_n_salient(o.m) : 99, cases[i].n_salient, name);
        } else {
            t_ok(!ok && o.rs != NULL && strstr(o.diag, cases[i].want) != NULL,
                 name);
            if (ok || strstr(o.diag, cases[i].want) == NULL)
                printf("# got %s\n", o.diag);
        }
        snprintf(name, sizeof name, "%s compiles quickly (%.2fs)",
                 cases[i].select, secs);
        t_ok(secs < 5, name);
        one_close(&o);
    }

    /* the place of the diagnostic is the any */
    struct one o;
    one_open(&o, "d x or any 2 (d a, d b)");
    t_eq_str(o.diag, "3:24: `any N` expects N from 0 to 1", "any diag place");
    one_close(&o);
}

static void
test_salience(void)
{
    struct one o;
    const char *d, *t;

    t_ok(one_open(&o, "sal a or sal:b before (sal a x re#.#) "
                      "between(other c, sal b)"),
         "salience ruleset compiles");
    t_eq_int(sel_n_salient(o.m), 3, "salient pairs, deduplicated");
    sel_salient_at(o.m, 0, &d, &t);
    t_eq_str(d, "sal", "salient_at 0 domain");
    t_eq_str(t, "a", "salient_at 0 type");
    sel_salient_at(o.m, 2, &d, &t);
    t_eq_str(d, "other", "salient_at 2 domain");
    t_eq_str(t, "c", "salient_at 2 type");
    t_ok(sel_salient(o.m, "sal", "b"), "sal:b salient");
    t_ok(sel_salient(o.m, "other", "c"), "other:c salient");
    t_ok(!sel_salient(o.m, "Sal", "a"), "domain is case-sensitive");
    t_ok(!sel_salient(o.m, "sal", "c"), "sal:c not salient");
    t_ok(!sel_salient(o.m, "", ""), "empty not salient");
    t_ok(!sel_salient(o.m, NULL, "a"), "no domain not salient");

    /* a non-salient event leaves the state alone */
    kval st = json_parse("{\"states\":[2],\"x\":1}", 21);
    kval b;
    char *before = to_json(&st);
    t_eq_int(step(&o, &st, "nope", "a", "{}", 1, -1, &b), 0,
             "non-salient event: not selected");
    char *after = to_json(&st);
    t_eq_str(after, before, "non-salient event: state untouched");
    t_ok(kval_is_null(&b), "non-salient event: bindings null");
    free(before);
    free(after);
    kval_free(st);
    one_close(&o);

    /* select where has no machine */
    static const char src[] =
        "ruleset sw { rule r { select where true send_directive(\"r\") } }";
    struct krl_diags dg;
    krl_diags_init(&dg);
    struct krl_ruleset *rs = krl_ruleset_compile("sw.krl", src, strlen(src),
                                                 &dg);
    t_ok(rs != NULL, "select where: compiles");
    if (rs != NULL) {
        struct arena *a = arena_new();
        char msg[512];
        t_ok(sel_compile(a, &krl_ruleset_ast(rs)->rules[0], "sw.krl", &dg) ==
                 NULL,
             "select where: no machine");
        first_diag(&dg, msg, sizeof msg);
        t_eq_str(msg, "1:14: Rule r has no `select when`",
                 "select where: diagnostic");
        arena_free(a);
    }
    krl_ruleset_free(rs);
    krl_diags_release(&dg);
}

static void
test_persistence(void)
{
    static const char src[] =
        "ruleset p {\n"
        "  rule r {\n"
        "    select when p a v re#^(\\w+)$# setting(v) before p b\n"
        "      before count 2 (p c n re#(\\d+)#) sum(total)\n"
        "    send_directive(\"r\")\n"
        "  }\n"
        "}\n";
    struct world *w1 = world_open("persist-1", src, NULL, 0);
    struct buf out;
    kval attrs;

    if (w1 == NULL)
        return;
    buf_init(&out);
    attrs = json_parse("{\"v\":\"one\"}", 11);
    world_send(w1, "p", "a", &attrs, 1000, &out);
    kval_free(attrs);
    attrs = kval_map();
    world_send(w1, "p", "b", &attrs, 2000, &out);
    kval_free(attrs);
    attrs = json_parse("{\"n\":\"40\"}", 10);
    world_send(w1, "p", "c", &attrs, 3000, &out);
    kval_free(attrs);
    t_eq_str(out.data, "", "persist: not selected halfway");
    char *saved = to_json(&w1->state[0]);
    t_ok(strstr(saved, "\"setting\":{\"v\":\"one\"") != NULL,
         "persist: the setting is in the state");
    t_ok(strstr(saved, "\"aggregates\":{\"total\":[\"40\"]}") != NULL,
         "persist: the aggregate is in the state");
    world_close(w1);

    /* a "restart": the ruleset compiled anew, the state from its text */
    struct world *w2 = world_open("persist-2", src, NULL, 0);
    if (w2 == NULL) {
        free(saved);
        buf_release(&out);
        return;
    }
    kval_free(w2->state[0]);
    w2->state[0] = json_parse(saved, strlen(saved));
    attrs = json_parse("{\"n\":\"2\"}", 9);
    world_send(w2, "p", "c", &attrs, 4000, &out);
    t_eq_str(out.data, "r{\"v\":\"one\",\"total\":42}",
             "persist: selected after the restart with the old settings");
    char *after = to_json(&w2->state[0]);
    t_ok(strstr(after, "setting") == NULL,
         "persist: settings cleared once selected");
    world_send(w2, "p", "c", &attrs, 5000, &out);
    t_eq_str(out.data, "", "persist: starts afresh");
    kval_free(attrs);
    free(after);
    free(saved);
    buf_release(&out);
    world_close(w2);
}

/* Behaviour kept from the reference on purpose (select-when 0.1.9). */
static void
test_reference_quirks(void)
{
    struct one o;
    kval st, b;
    char *js;

    /* at a `then` merge point the next primitive is tried twice - by its
     * own transition and by "not it" back to start - so an aggregator
     * there counts the value twice */
    t_ok(one_open(&o, "q a then count 2 (q c n re#(\\d+)#) sum(t)"),
         "quirk then-aggregate: compiles");
    st = sel_initial(o.m);
    step(&o, &st, "q", "a", "{}", 1, -1, NULL);
    step(&o, &st, "q", "c", "{\"n\":\"40\"}", 2, -1, NULL);
    t_eq_int(step(&o, &st, "q", "c", "{\"n\":\"2\"}", 3, -1, &b), 1,
             "quirk then-aggregate: selected");
    js = to_json(&b);
    t_eq_str(js, "{\"t\":82}", "quirk then-aggregate: 40 + 40 + 2");
    free(js);
    kval_free(b);
    kval_free(st);
    one_close(&o);

    /* `then` goes back to start on anything but what leads on - "not b
     * or not c" - even when the event also leads on: a, b, a, d drops
     * the b found after the first a */
    t_ok(one_open(&o, "q a then ((q b or q c) before q d)"),
         "quirk then-or: compiles");
    st = sel_initial(o.m);
    t_eq_int(step(&o, &st, "q", "a", "{}", 1, -1, NULL), 0, "then-or: a");
    t_eq_int(step(&o, &st, "q", "b", "{}", 2, -1, NULL), 0, "then-or: b");
    t_eq_int(step(&o, &st, "q", "d", "{}", 3, -1, NULL), 1,
             "then-or: d selects");
    t_eq_int(step(&o, &st, "q", "a", "{}", 4, -1, NULL), 0, "then-or: a");
    t_eq_int(step(&o, &st, "q", "b", "{}", 5, -1, NULL), 0, "then-or: b");
    t_eq_int(step(&o, &st, "q", "a", "{}", 6, -1, NULL), 0,
             "then-or: a again");
    t_eq_int(step(&o, &st, "q", "d", "{}", 7, -1, NULL), 0,
             "then-or: d does not select");
    kval_free(st);
    one_close(&o);

    /* `a and b` consumes: a, b, b selects once (issue #249) */
    t_ok(one_open(&o, "q a and q b"), "quirk and: compiles");
    st = sel_initial(o.m);
    t_eq_int(step(&o, &st, "q", "a", "{}", 1, -1, NULL), 0, "and: a");
    t_eq_int(step(&o, &st, "q", "b", "{}", 2, -1, NULL), 1, "and: b");
    t_eq_int(step(&o, &st, "q", "b", "{}", 3, -1, NULL), 0, "and: b again");
    kval_free(st);
    one_close(&o);

    /* a failing primitive resets only when its transition is tried:
     * waiting for b, an a that fails its regexp changes nothing */
    t_ok(one_open(&o, "q a x re#^y$# before q b"), "quirk reset: compiles");
    st = sel_initial(o.m);
    t_eq_int(step(&o, &st, "q", "a", "{\"x\":\"y\"}", 1, -1, NULL), 0,
             "reset: a");
    t_eq_int(step(&o, &st, "q", "a", "{\"x\":\"n\"}", 2, -1, NULL), 0,
             "reset: a failing, not tried");
    t_eq_int(step(&o, &st, "q", "b", "{}", 3, -1, NULL), 1,
             "reset: b still selects");
    t_eq_int(step(&o, &st, "q", "a", "{\"x\":\"n\"}", 4, -1, NULL), 0,
             "reset: a failing at start");
    t_eq_int(step(&o, &st, "q", "b", "{}", 5, -1, NULL), 0,
             "reset: b alone does not");
    kval_free(st);
    one_close(&o);
}

static void
test_damaged_state(void)
{
    static const char *const states[] = {
        "null", "[]", "{}", "\"x\"", "{\"states\":\"x\"}",
        "{\"states\":[99,-1,\"s0\",1.5,null]}", "{\"states\":[1]}",
        "{\"states\":[]}", "{\"setting\":[1],\"aggregates\":7}",
    };
    struct one o;
    char name[300];

    t_ok(one_open(&o, "dm a before dm b"), "damaged: compiles");
    for (size_t i = 0; i < N_OF(states); i++) {
        kval st = json_parse(states[i], strlen(states[i]));
        int r1 = step(&o, &st, "dm", "b", "{}", 1, -1, NULL);
        int r2 = step(&o, &st, "dm", "a", "{}", 2, -1, NULL);
        int r3 = step(&o, &st, "dm", "b", "{}", 3, -1, NULL);
        snprintf(name, sizeof name, "damaged state %s works as start",
                 states[i]);
        t_ok(r1 == 0 && r2 == 0 && r3 == 1, name);
        kval_free(st);
    }
    one_close(&o);
}

static void
test_where_error(void)
{
    static const char src[] =
        "ruleset we {\n"
        "  rule r {\n"
        "    select when we a before we e x re#(.*)# setting(x)\n"
        "      where event:boom\n"
        "    send_directive(\"r\")\n"
        "  }\n"
        "  rule r2 {\n"
        "    select when wf a before wf e x re#(.*)# setting(x)\n"
        "      where x == \"go\"\n"
        "    send_directive(\"r2\")\n"
        "  }\n"
        "}\n";
    struct world *w = world_open("where-error", src, NULL, 0);
    struct where_ctx c;
    kval attrs = kval_map();
    struct sel_event ev = {"we", "e", &attrs, 2000};
    struct buf out;

    if (w == NULL) {
        kval_free(attrs);
        return;
    }
    buf_init(&out);
    c.w = w;
    c.rule = &w->ast->rules[0];
    world_send(w, "we", "a", &attrs, 1000, &out);
    char *before = to_json(&w->state[0]);

    kval next, b, err = kval_null();
    w->domain = "we";
    w->type = "e";
    w->attrs = &attrs;
    int rc = sel_step(w->m[0], kval_copy(&w->state[0]), &ev, -1, where_cb,
                      &c, &next, &b, &err);
    t_eq_int(rc, -1, "where error: -1");
    t_ok(kval_is_error(&err), "where error: the error is returned");
    t_ok(kval_is_null(&b), "where error: bindings null");
    char *after = to_json(&next);
    t_eq_str(after, before, "where error: the state as before the event");
    free(after);
    kval_free(next);
    kval_free(err);

    /* no where evaluator at all is an error too */
    err = kval_null();
    rc = sel_step(w->m[0], kval_copy(&w->state[0]), &ev, -1, NULL, NULL,
                  &next, &b, &err);
    t_eq_int(rc, -1, "where without evaluator: -1");
    t_ok(kval_is_error(&err), "where without evaluator: an error");
    kval_free(next);
    kval_free(err);

    /* a false where resets the machine to start */
    static const char *const seq[][3] = {
        {"a", "{}", ""},
        {"e", "{\"x\":\"no\"}", ""},
        {"e", "{\"x\":\"go\"}", ""},
        {"a", "{}", ""},
        {"e", "{\"x\":\"go\"}", "r2{\"x\":\"go\"}"},
    };
    for (size_t i = 0; i < N_OF(seq); i++) {
        kval at = json_parse(seq[i][1], strlen(seq[i][1]));
        char name[100];
        world_send(w, "wf", seq[i][0], &at, 3000 + (int64_t)i, &out);
        snprintf(name, sizeof name, "where false resets: #%zu", i + 1);
        t_eq_str(out.data, seq[i][2], name);
        kval_free(at);
    }
    free(before);
    buf_release(&out);
    kval_free(attrs);
    world_close(w);
}

static void
test_within_boundary(void)
{
    struct one o;
    kval st;

    t_ok(one_open(&o, "wb a before wb b within 10 seconds"),
         "within boundary: compiles");
    st = sel_initial(o.m);
    t_eq_int(step(&o, &st, "wb", "a", "{}", 1000, 10000, NULL), 0,
             "within: a");
    t_eq_int(step(&o, &st, "wb", "b", "{}", 11000, 10000, NULL), 1,
             "within: b exactly at the limit matches");
    t_eq_int(step(&o, &st, "wb", "a", "{}", 20000, 10000, NULL), 0,
             "within: a again");
    t_eq_int(step(&o, &st, "wb", "b", "{}", 30001, 10000, NULL), 0,
             "within: b 1 ms past the limit does not");
    t_eq_int(step(&o, &st, "wb", "b", "{}", 30002, 10000, NULL), 0,
             "within: the machine was reset");
    t_eq_int(step(&o, &st, "wb", "a", "{}", 40000, 10000, NULL), 0,
             "within: a once more");
    t_eq_int(step(&o, &st, "wb", "b", "{}", 40000, 10000, NULL), 1,
             "within: b at the same time");
    /* As the reference: after a match the machine holds end, whose clock
     * keeps the previous start, so the next round counts from 40000. */
    t_eq_int(step(&o, &st, "wb", "a", "{}", 45000, 10000, NULL), 0,
             "within: a 5 s after the last start");
    t_eq_int(step(&o, &st, "wb", "b", "{}", 50001, 10000, NULL), 0,
             "within: the clock ran from the previous start");
    t_eq_int(step(&o, &st, "wb", "a", "{}", 60000, 10000, NULL), 0,
             "within: a after a reset");
    t_eq_int(step(&o, &st, "wb", "b", "{}", 50000, 10000, NULL), 1,
             "within: an event earlier than the start matches");
    t_eq_int(step(&o, &st, "wb", "a", "{}", 60000, -1, NULL), 0,
             "within: -1 means no limit (a)");
    t_eq_int(step(&o, &st, "wb", "b", "{}", 999999999, -1, NULL), 1,
             "within: -1 means no limit (b)");
    t_eq_int(step(&o, &st, "wb", "a", "{}", 70000, 0, NULL), 0,
             "within 0: a");
    t_eq_int(step(&o, &st, "wb", "b", "{}", 70000, 0, NULL), 1,
             "within 0: b at the same ms");
    kval_free(st);
    one_close(&o);
}

static void
test_captures(void)
{
    struct one o;
    kval st, b;
    char *js;

    /* unset groups are null; attributes go through toString */
    t_ok(one_open(&o, "cp a x re#^(a)|(b)$# y re#^(.)(.)?$# "
                      "setting(p, q, r, s, t)"),
         "captures: compiles");
    st = sel_initial(o.m);
    t_eq_int(step(&o, &st, "cp", "a", "{\"x\":\"b\",\"y\":7}", 1, -1, &b), 1,
             "captures: selected");
    js = to_json(&b);
    t_eq_str(js, "{\"q\":\"b\",\"r\":\"7\"}",
             "captures: unset groups and missing captures are null");
    free(js);
    kval_free(b);
    t_eq_int(step(&o, &st, "cp", "a", "{\"x\":\"a\",\"y\":[1]}", 2, -1, &b),
             0, "captures: an array is [Array] (no match)");
    kval_free(b);
    t_eq_int(step(&o, &st, "cp", "a", "{\"x\":true,\"y\":\"\\u00e9\"}", 3, -1,
                  &b),
             0, "captures: true is \"true\" (no match)");
    kval_free(b);
    t_eq_int(step(&o, &st, "cp", "a", "{\"x\":\"a\",\"y\":\"\\u00e9\"}", 4,
                  -1, &b),
             1, "captures: one UTF-8 character is one `.`");
    js = to_json(&b);
    t_eq_str(js, "{\"p\":\"a\",\"r\":\"\xc3\xa9\"}", "captures: unicode");
    free(js);
    kval_free(b);
    kval_free(st);
    one_close(&o);

    /* case-insensitive flag, and the empty/missing attribute */
    t_ok(one_open(&o, "ci a s re#^OK$#i or ci b m re#^$#"), "flags: compiles");
    st = sel_initial(o.m);
    t_eq_int(step(&o, &st, "ci", "a", "{\"s\":\"ok\"}", 1, -1, NULL), 1,
             "flags: i");
    t_eq_int(step(&o, &st, "ci", "b", "{}", 2, -1, NULL), 1,
             "missing attribute is \"\"");
    t_eq_int(step(&o, &st, "ci", "b", "{\"m\":null}", 3, -1, NULL), 0,
             "null attribute is \"null\"");
    kval_free(st);
    one_close(&o);
}

/* An AST straight from the parser has no compiled regexps (konst): the
 * machine compiles its own. */
static void
test_unresolved_ast(void)
{
    static const char src[] =
        "ruleset u { rule r { select when u a n re#^(\\d+)$# setting(v) "
        "send_directive(\"r\") } }";
    struct arena *a = arena_new();
    struct krl_diags d;
    krl_diags_init(&d);
    struct ast_ruleset *rs = parse_ruleset(a, "u.krl", src, strlen(src), &d);
    t_ok(rs != NULL && rs->n_rules == 1, "unresolved: parses");
    if (rs != NULL && rs->n_rules == 1) {
        struct sel_machine *m = sel_compile(a, &rs->rules[0], "u.krl", &d);
        t_ok(m != NULL, "unresolved: compiles");
        if (m != NULL) {
            kval attrs = json_parse("{\"n\":42}", 8);
            struct sel_event ev = {"u", "a", &attrs, 1};
            kval next, b, err = kval_null();
            int rc = sel_step(m, sel_initial(m), &ev, -1, NULL, NULL, &next,
                              &b, &err);
            char *js = to_json(&b);
            t_eq_int(rc, 1, "unresolved: selected");
            t_eq_str(js, "{\"v\":\"42\"}", "unresolved: capture");
            free(js);
            kval_free(next);
            kval_free(b);
            kval_free(err);
            kval_free(attrs);
        }
    }
    krl_diags_release(&d);
    arena_free(a);
}

/* ------------------------------------------------------------------ */
/* Random expressions run through the reference library                */

/*
 * Expectations computed by the reference select-when 0.1.9 code itself
 * (StateMachine.ts and expressions.ts, types stripped, with primitive
 * functions as the krl-compiler generates them: attribute regexp, setting,
 * aggregateEvent) on random expressions and random event sequences.  Each
 * event is TYPE, then x's value (- when missing), @ time - 1000000; each
 * result is "." (not salient), "-" or "F" with the bindings, then the
 * states (s<k> is state k + 2).  They pin down the order in which
 * transitions are tried, which settings, aggregates and resets expose.
 */
static const struct {
    const char *select;
    int64_t within_ms;
    const char *events;
    const char *want;
} reference_runs[] = {
    {
     "((d b x re#^(\\d)$# setting(v0)) between(d b x re#^(\\d)$# "
     "setting(v1), d b)) not between(d a, repeat 1 (d c) push(t4))",
     -1,
     "a-@-500 bz@130 a-@634 c1@747 a1@984 d2@1809 d-@2317 a2@2702 "
         "b2@2971 d1@2471 a-@2612 d1@3482 a1@4928 c2@4428 c1@3928 c1@3428 "
         "b2@2928 a2@3335 d1@4226 cz@5550 a1@5050 cz@6529 d2@6029 az@5529 "
         "dz@6730",
     "-[s2] -[] -[s2] F{\"t4\":[null]}[end] -[end] . . -[end] -[end] . "
         "-[end] . -[end] F{\"t4\":[null]}[end] F{\"t4\":[null]}[end] "
         "F{\"t4\":[null]}[end] -[end] -[end] . F{\"t4\":[null]}[end] "
         "-[end] F{\"t4\":[null]}[end] . -[end] ." },
    {
     "any 1 ((d b) not between(d c x re#^(\\d)$# setting(v1), d c x "
     "re#^(\\d)$# setting(v2)), repeat 3 (d a) sum(t3))",
     -1,
     "d2@166 d2@1598 az@2090 a1@1590 cz@1689 b1@2575 a-@3557 b2@4006 "
         "a-@4196 a-@3696 d2@4957 c-@6335 d1@6939 a2@7800 b-@8593 dz@8093 "
         "a1@8788 a1@9504 a2@10071 b2@10399 a1@10804 b2@10304 bz@10947 "
         "a2@10447 a2@9947",
     ". . -[s1] -[s2] -[s2] -[s2] F{\"t3\":0}[end] -[end] "
         "F{\"t3\":0}[end] F{\"t3\":0}[end] . -[end] . F{\"t3\":0}[end] "
         "-[end] . F{\"t3\":0}[end] F{\"t3\":0}[end] F{\"t3\":0}[end] "
         "-[end] F{\"t3\":0}[end] -[end] -[end] F{\"t3\":0}[end] "
         "F{\"t3\":0}[end]" },
    {
     "any 1 (any 1 (d c x re#^(\\d)$# setting(v0), d b), after(d a, d c x "
     "re#^(\\d)$# setting(v3), d c))",
     2000,
     "d2@1055 c-@1435 a2@2383 c1@1883 c2@3178 d2@3239 a1@3683 az@4623 "
         "b1@5783 az@5804 a-@6057 cz@6688 a1@6188 d1@5688 c-@7149 b2@8253 "
         "c1@7753 cz@9160 cz@8660 a-@8160 c1@8982 c2@10168 d2@11294 "
         "dz@12639 d1@12139",
     ". -[s0] -[s0] -[s1] -[s1] . F{\"v3\":\"1\"}[end] -[start] "
         "F{}[end] -[start] -[start] -[s0] -[s0] . -[] F{}[end] "
         "F{\"v0\":\"1\"}[end] -[s0] -[] -[start] F{\"v0\":\"1\"}[end] "
         "F{\"v0\":\"2\"}[end] . . ." },
    {
     "then((d c) not between(d a x re#^(\\d)$# setting(v1), d a), repeat 2 "
     "(d a) push(t3))",
     -1,
     "b-@1252 b1@1406 d-@2385 d2@1885 az@2798 bz@3300 a-@4794 cz@5535 "
         "bz@6042 b-@7219 c1@7554 d1@8588 a2@9424 a1@8924 a1@10045 cz@9545 "
         "c1@9909 a1@10917 a-@11116 d-@11561 b2@11061 a1@10561 b1@10636 "
         "az@11542 a1@11751",
     ". . . . -[] . -[] -[start] . . -[start] . -[s0] -[s1] -[s2] -[s2] "
         "-[s2] F{\"v1\":\"2\",\"t3\":[null,null,null]}[end] "
         "F{\"t3\":[null,null,null]}[end] . . "
         "F{\"t3\":[null,null,null]}[end] . F{\"t3\":[null,null,null]}[end] "
         "F{\"t3\":[null,null,null]}[end]" },
    {
     "any 1 (before(d b, d b), count 2 (d b) push(t2), after(d a x "
     "re#^(\\d)$# setting(v3), d b))",
     3000,
     "az@1083 az@1551 b-@1051 cz@1352 b1@2103 b-@1603 cz@2531 c2@3838 "
         "bz@4695 az@4717 b2@5423 bz@5904 a1@5404 c1@6612 bz@6112 bz@6887 "
         "c-@6387 c-@7831 c1@8484 b2@7984 c2@8242 dz@8506 d1@8762 b2@8262 "
         "c2@7762",
     "-[start] -[start] -[s0,s1] . F{\"t2\":[null,null]}[end] -[s0,s1] "
         ". . -[s0,s1] -[] -[s0,s1] F{\"t2\":[null,null]}[end] -[start] . "
         "-[s0,s1] F{\"t2\":[null,null]}[end] . . . -[s0,s1] . . . "
         "F{\"t2\":[null,null]}[end] ." },
    {
     "any 1 (count 2 (d a x re#^(\\d)$# setting(v0)) sum(t0), repeat 1 (d c "
     "x re#^(\\d)$# setting(v1)))",
     1000,
     "d2@1314 b1@2274 c1@3489 cz@3745 dz@5010 b2@5109 d1@5917 a1@6861 "
         "c-@7204 c1@7970 a2@7470 a-@7509 b2@7009 a-@7582 a-@7749 b2@7249 "
         "a1@8589 c2@8089 b1@8396 cz@8501 d1@9932 a1@10267 c2@10913 "
         "a2@12027 bz@12377",
     ". . F{\"v1\":\"1\"}[end] -[] . . . -[s0] -[s0] "
         "F{\"v1\":\"1\"}[end] -[end] -[end] . -[end] -[end] . -[end] "
         "F{\"v1\":\"2\"}[end] . -[] . -[s0] -[s0] -[s0] ." },
    {
     "any 1 ((d c) between(d c x re#^(\\d)$# setting(v1), d c), before(d b "
     "x re#^(\\d)$# setting(v3), d a), d c)",
     3000,
     "d1@181 a-@-319 b1@-819 c1@310 b2@1788 bz@2250 b2@3366 d-@2866 "
         "b2@4242 d2@4492 c1@5428 a1@4928 dz@5942 c-@7274 dz@6774 az@8012 "
         "c-@8083 d2@9399 dz@8899 c2@9988 c-@9488 d-@10550 c1@11434 "
         "c2@12332 a-@12702",
     ". -[start] -[s2] -[s2] -[s2] -[] -[s2] . -[s2] . -[s2] "
         "F{\"v3\":\"2\"}[end] . F{}[end] . -[start] F{}[end] . . "
         "F{\"v1\":\"2\"}[end] F{}[end] . F{\"v1\":\"1\"}[end] "
         "F{\"v1\":\"2\"}[end] -[start]" },
    {
     "any 1 ((d b) not between(d a, d b x re#^(\\d)$# setting(v2)), "
     "before(d c, d c x re#^(\\d)$# setting(v4), d a x re#^(\\d)$# "
     "setting(v5)))",
     -1,
     "b-@352 az@1787 dz@2266 dz@3708 cz@4218 a-@5225 a1@5438 d-@5490 "
         "a2@4990 c-@6003 c-@5503 az@6313 a2@7187 b2@6687 d-@6709 a2@7461 "
         "b2@6961 c-@8268 bz@8821 c1@10066 a1@10315 dz@10512 a2@11668 "
         "c-@11758 b1@11258",
     "-[start] -[s0] . . -[s0] -[s0] -[s0] . -[s0] -[s0] -[s0] -[s0] "
         "-[s0] F{\"v2\":\"2\"}[end] . -[s0] F{\"v2\":\"2\"}[end] -[s1] "
         "-[s1] -[s2] F{\"v4\":\"1\",\"v5\":\"1\"}[end] . -[s0] -[s0] "
         "F{\"v2\":\"1\"}[end]" },
    {
     "any 1 ((d c x re#^(\\d)$# setting(v0)) between(d b, d a), (d b) "
     "between(d c x re#^(\\d)$# setting(v4), d a), repeat 1 (d c))",
     2000,
     "d1@121 d-@-379 b-@117 c-@1564 cz@2366 d-@3673 b-@4621 c-@5592 "
         "c2@6040 a-@5540 a-@6276 d2@7500 bz@7000 b-@7702 cz@8161 d1@7661 "
         "b2@8918 bz@10161 b2@11226 c2@11265 b1@10765 cz@10999 bz@11535 "
         "a-@11870 d1@12615",
     ". . -[s0] -[] F{}[end] . -[end] F{}[end] F{}[end] -[end] -[end] . "
         "-[s0] -[s0] -[] . -[s0] -[s0] -[s0] -[s1] -[s1] -[s1] -[s1] "
         "F{\"v0\":\"2\"}[end] ." },
    {
     "(then(d b x re#^(\\d)$# setting(v0), d c)) not between(count 2 (d a) "
     "sum(t2), d c)",
     3000,
     "d-@977 dz@2233 az@3439 b-@3561 a1@3891 d1@4534 d2@4725 d2@6063 "
         "d1@7061 a-@6561 az@6589 c2@6089 az@6668 dz@6968 b1@6468 az@6970 "
         "c1@7052 bz@6552 az@6052 a-@5552 az@6897 d2@7109 d-@7467 cz@8586 "
         "d1@10032",
     ". . -[s2] -[s2] -[s0] . . . . -[s2] -[s0] F{\"t2\":0}[end] -[s2] "
         ". -[s2] -[s0] F{\"t2\":0}[end] -[start] -[s2] -[s0] -[s0] . . "
         "F{\"t2\":0}[end] ." },
    {
     "(before(d b, d a)) not between(repeat 1 (d b) max(t2), repeat 3 (d a) "
     "sum(t3))",
     -1,
     "a-@1203 c2@2309 c-@3281 cz@4112 a2@5491 b2@6407 d-@7895 b-@7395 "
         "a2@6895 d-@8357 d1@9840 az@9340 dz@8840 dz@10047 a-@10245 az@9745 "
         "b-@10371 a2@10682 a-@11980 d2@12082 az@13528 d-@14273 a-@15673 "
         "dz@16671 c2@17375",
     "-[start] . . . -[start] -[s0] . -[s1,s0] -[start,s2] . . -[s3] . "
         ". F{\"t2\":0,\"t3\":0}[end] F{\"t3\":0}[end] -[end] "
         "F{\"t3\":0}[end] F{\"t3\":0}[end] . F{\"t3\":0}[end] . "
         "F{\"t3\":0}[end] . ." },
    {
     "(before(d c x re#^(\\d)$# setting(v0), d a x re#^(\\d)$# setting(v1), "
     "d c)) not between(count 3 (d c) push(t3), before(d c, d c))",
     3000,
     "d-@159 a-@-341 c1@-841 cz@-349 cz@767 c-@1996 c1@2238 az@3693 "
         "c2@3974 dz@3474 cz@2974 dz@2474 b2@1974 c1@3401 b1@2901 a2@2401 "
         "c2@2491 c1@3071 az@3488 c2@3705 a1@3205 d-@2705 d-@3810 c-@4985 "
         "c-@4485",
     ". -[start] -[s4] -[s5] -[s0] -[s3] F{}[end] -[start] -[s4] . "
         "-[s5] . . -[s0] . -[s0] -[s1,s3] "
         "F{\"v0\":\"2\",\"t3\":[null,null,null]}[end] -[start] -[s4] -[s4] "
         ". . -[s5] -[s0]" },
    {
     "(before(d a, d b)) not between((d a) between(d a x re#^(\\d)$# "
     "setting(v3), d a), repeat 1 (d a) sum(t5))",
     -1,
     "d1@-500 d1@69 b2@555 c1@1054 dz@1552 b-@1735 b-@1235 a1@2514 "
         "a2@3034 bz@3688 c-@3882 az@4423 bz@5567 a-@6878 d2@7421 b-@6921 "
         "c2@7772 b2@7272 d1@8356 a-@9188 c-@9388 a2@9884 az@10143 az@11591 "
         "d-@12198",
     ". . -[start] . . -[start] -[start] -[s2] -[s3] -[s3] . -[s0] "
         "-[s0] F{\"v3\":\"1\",\"t5\":0}[end] . -[end] . -[end] . "
         "F{\"t5\":0}[end] . F{\"t5\":0}[end] F{\"t5\":0}[end] "
         "F{\"t5\":0}[end] ." },
    {
     "before((d c x re#^(\\d)$# setting(v0)) not between(d c x re#^(\\d)$# "
     "setting(v1), d a), repeat 1 (d b) max(t3))",
     -1,
     "a-@724 a1@2005 c1@3466 d1@3862 a1@4120 b1@5363 d-@4863 a1@5129 "
         "b1@4629 b-@6081 a-@7284 c-@7381 b-@7789 a-@9127 b1@8627 bz@9655 "
         "b2@10286 dz@10565 d-@10065 d2@11133 b2@11509 c-@11009 bz@12364 "
         "b2@12768 bz@13416",
     "-[start] -[start] -[s0] . -[s1] F{\"v1\":\"1\",\"t3\":0}[end] . "
         "-[end] F{\"t3\":0}[end] F{\"t3\":0}[end] -[end] -[end] "
         "F{\"t3\":0}[end] -[end] F{\"t3\":0}[end] F{\"t3\":0}[end] "
         "F{\"t3\":0}[end] . . . F{\"t3\":0}[end] -[end] F{\"t3\":0}[end] "
         "F{\"t3\":0}[end] F{\"t3\":0}[end]" },
    {
     "((d c) not between(d b x re#^(\\d)$# setting(v1), d c)) not "
     "between(count 1 (d a), (d a) between(d a x re#^(\\d)$# setting(v5), d "
     "a))",
     3000,
     "bz@-500 a-@-1000 a2@-372 az@555 a-@1899 dz@2967 az@4423 a1@4628 "
         "d2@4128 d-@5052 a1@6084 a2@7035 d2@6535 c2@6547 a-@6736 b1@8020 "
         "a1@7520 a-@7815 d2@9298 d2@9879 a2@9982 a-@11131 b1@10631 "
         "d2@10131 b-@11336",
     "-[start] -[s1] -[s2] -[s3] F{\"v5\":\"2\"}[end] . -[s1] -[s2] . . "
         "-[s3] F{\"v5\":\"1\"}[end] . -[start] -[s1] -[s0] -[s0] -[s0] . . "
         "-[s1] -[] -[start] . -[start]" },
    {
     "any 1 ((d c) not between(d b x re#^(\\d)$# setting(v1), d b), count 1 "
     "(d b) max(t3))",
     2000,
     "b1@729 d-@229 cz@-271 b1@471 a-@1202 dz@2107 d1@2204 a-@3545 "
         "b-@3045 c2@2545 a2@3977 az@4724 b2@5743 d1@6626 b-@7329 b1@7596 "
         "c2@7096 b1@6596 az@6096 dz@7573 b1@7073 a1@6573 b-@7155 c-@7801 "
         "dz@8472",
     "F{\"v1\":\"1\",\"t3\":0}[end] . -[start] "
         "F{\"v1\":\"1\",\"t3\":0}[end] . . . . F{\"t3\":0}[end] -[start] . "
         ". F{\"v1\":\"2\",\"t3\":0}[end] . F{\"t3\":0}[end] "
         "F{\"v1\":\"1\",\"t3\":0}[end] -[start] "
         "F{\"v1\":\"1\",\"t3\":0}[end] . . F{\"v1\":\"1\",\"t3\":0}[end] . "
         "F{\"t3\":0}[end] -[start] ." },
    {
     "(after(d a x re#^(\\d)$# setting(v0), d c x re#^(\\d)$# setting(v1))) "
     "not between(before(d c, d b), repeat 1 (d b) sum(t4))",
     -1,
     "c-@1224 cz@2482 c2@3048 cz@3262 b2@2762 az@2262 d2@2481 b-@3002 "
         "c-@2502 a2@3710 c1@3210 c2@4205 d2@4722 a1@6018 az@6230 b1@6454 "
         "az@7159 a-@8320 cz@9143 a1@8643 d1@8143 c-@9100 b2@9136 c1@8636 "
         "cz@9851",
     "-[s2] -[s2] -[s2] -[s2] -[s0] -[s0] . F{\"t4\":0}[end] -[end] "
         "-[end] -[end] -[end] . -[end] -[end] F{\"t4\":0}[end] -[end] "
         "-[end] -[end] -[end] . -[end] F{\"t4\":0}[end] -[end] -[end]" },
    {
     "any 1 (repeat 1 (d a x re#^(\\d)$# setting(v0)), before(d c x "
     "re#^(\\d)$# setting(v1), d b, d c))",
     2000,
     "b1@398 a2@871 b2@1400 a2@2102 a-@1602 b1@1102 cz@602 cz@1517 "
         "a-@1017 d-@1312 a1@1775 b2@3173 a-@3612 c1@4715 b-@4736 b1@4798 "
         "d-@4298 d1@5541 a1@6295 cz@7089 dz@8474 b-@7974 b2@8425 az@8548 "
         "a2@9973",
     "-[start] F{\"v0\":\"2\"}[end] -[end] F{\"v0\":\"2\"}[end] -[] "
         "-[start] -[] -[] -[] . F{\"v0\":\"1\"}[end] -[end] -[] -[s0] "
         "-[s1] -[s1] . . -[s1] -[] . -[start] -[start] -[] "
         "F{\"v0\":\"2\"}[end]" },
};

static void
test_reference_runs(void)
{
    struct buf got;
    char name[300];

    buf_init(&got);
    for (size_t i = 0; i < N_OF(reference_runs); i++) {
        struct one o;
        const char *p = reference_runs[i].events;
        kval st;

        snprintf(name, sizeof name, "reference run %zu compiles", i + 1);
        t_ok(one_open(&o, reference_runs[i].select), name);
        if (o.m == NULL) {
            one_close(&o);
            continue;
        }
        st = sel_initial(o.m);
        buf_reset(&got);
        while (*p != '\0') {
            char type[2] = {p[0], '\0'};
            char x = p[1];
            char *end;
            long t = strtol(p + 3, &end, 10);
            char attrs[16];
            kval b;

            snprintf(attrs, sizeof attrs, x == '-' ? "{}" : "{\"x\":\"%c\"}",
                     x);
            p = *end == ' ' ? end + 1 : end;
            if (got.len > 0)
                buf_addc(&got, ' ');
            if (!sel_salient(o.m, "d", type)) {
                buf_addc(&got, '.');
                continue;
            }
            char *js = to_json(&st);
            kval_free(st);
            st = json_parse(js, strlen(js));
            free(js);
            int rc = step(&o, &st, "d", type, attrs, 1000000 + t,
                          reference_runs[i].within_ms, &b);
            buf_addc(&got, rc == 1 ? 'F' : rc == 0 ? '-' : 'E');
            if (rc == 1 && kval_map_len(&b) > 0) {
                js = to_json(&b);
                buf_adds(&got, js);
                free(js);
            }
            kval_free(b);
            buf_addc(&got, '[');
            const kval *ids = kval_map_get_str(&st, "states");
            for (size_t k = 0; ids != NULL && k < kval_array_len(ids); k++) {
                int id = (int)kval_get_number(kval_array_get(ids, k));
                if (k > 0)
                    buf_addc(&got, ',');
                if (id < 2)
                    buf_adds(&got, id == 0 ? "start" : "end");
                else
                    buf_printf(&got, "s%d", id - 2);
            }
            buf_addc(&got, ']');
        }
        snprintf(name, sizeof name, "reference run %zu: %s", i + 1,
                 reference_runs[i].select);
        t_eq_str(got.data, reference_runs[i].want, name);
        kval_free(st);
        one_close(&o);
    }
    buf_release(&got);
}

int
main(void)
{
    run_steps("event-exp.krl", event_exp_krl, NULL, 0, event_exp_steps,
              N_OF(event_exp_steps));
    run_steps("within.krl", within_krl, within_ns, N_OF(within_ns),
              within_steps, N_OF(within_steps));
    run_steps("scope.krl", scope_krl, scope_ns, N_OF(scope_ns), scope_steps,
              N_OF(scope_steps));
    test_conformance();
    test_diagnostics();
    test_salience();
    test_persistence();
    test_reference_quirks();
    test_reference_runs();
    test_damaged_state();
    test_where_error();
    test_within_boundary();
    test_captures();
    test_unresolved_ast();
    return tap_done();
}
