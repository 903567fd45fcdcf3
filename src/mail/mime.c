/*
 * mime.c - a mail message turned into the attributes of its event
 * (DESIGN.md §4), with GMime 3.
 *
 * Owns: mime_init, mime_parse, mime_result_release.  The message is
 * untrusted, so every copy out of it is bounded (header values, header
 * count, filenames, bodies) and the walk into nested multiparts stops at
 * MAX_DEPTH.  GLib/GMime objects never leave this file: the result holds
 * only kval values and xmalloc'd attachment records.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <openssl/evp.h>

#include "picomail/buf.h"
#include "picomail/json.h"
#include "picomail/mem.h"
#include "picomail/mime.h"
#include "picomail/value.h"

#define MAX_DEPTH 32                /* multipart nesting we descend into */
#define MAX_HEADER_VALUE (64 * 1024)    /* bytes kept of one header value */
#define MAX_HEADERS 1000            /* distinct names kept in "headers" */
#define MAX_REPEAT 100              /* values kept of one repeated name */
#define MAX_FILENAME 1024
#define MAX_ATTACHMENTS 1000

/* State of one parse. */
struct walk {
    const struct mime_options *opt;
    size_t msg_len;                 /* caps the bodies we copy */
    kval text, html;                /* null until found */
    kval json;                      /* members from an application/json part */
    kval att_list;                  /* the "attachments" attribute */
    struct mime_attachment *atts;
    size_t n_atts, cap_atts;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void
init_gmime(void)
{
    g_mime_init();
}

void
mime_init(void)
{
    pthread_once(&init_once, init_gmime);
}

/* Length of S cut to at most MAX bytes, backing off to a UTF-8 boundary. */
static size_t
utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

static kval
str_capped(const char *s, size_t max)
{
    if (s == NULL)
        return kval_null();
    return kval_str(s, utf8_cut(s, strlen(s), max));
}

static void
lower_ascii(char *s)
{
    for (; *s != '\0'; s++)
        *s = (char)tolower((unsigned char)*s);
}

/*
 * A header block starts with a field name (printable ASCII but ':') and a
 * colon.  Anything else (a body, a blank first line, an mbox "From " line)
 * is not a mail message.
 */
static int
has_header_block(const char *msg, size_t len)
{
    size_t i = 0;

    while (i < len && msg[i] > ' ' && msg[i] < 127 && msg[i] != ':')
        i++;
    if (i == 0)
        return 0;
    while (i < len && (msg[i] == ' ' || msg[i] == '\t'))
        i++;
    return i < len && msg[i] == ':';
}

/* ---- addresses ---- */

/* Append the bare addresses of LIST (groups flattened) to ARR. */
static kval
add_addresses(kval arr, InternetAddressList *list, int depth)
{
    int i, n;

    if (list == NULL || depth > 2)
        return arr;
    n = internet_address_list_length(list);
    for (i = 0; i < n && i < MAX_HEADERS; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            const char *a = internet_address_mailbox_get_addr(
                INTERNET_ADDRESS_MAILBOX(ia));
            if (a != NULL && a[0] != '\0')
                arr = kval_array_append(arr, str_capped(a, MAX_HEADER_VALUE));
        } else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            arr = add_addresses(arr, internet_address_group_get_members(
                                         INTERNET_ADDRESS_GROUP(ia)),
                                depth + 1);
        }
    }
    return arr;
}

/* The first mailbox of LIST, or NULL. */
static InternetAddressMailbox *
first_mailbox(InternetAddressList *list, int depth)
{
    int i, n;

    if (list == NULL || depth > 2)
        return NULL;
    n = internet_address_list_length(list);
    for (i = 0; i < n; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(ia))
            return INTERNET_ADDRESS_MAILBOX(ia);
        if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            InternetAddressMailbox *m = first_mailbox(
                internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
                depth + 1);
            if (m != NULL)
                return m;
        }
    }
    return NULL;
}

/* ---- message ids and dates ---- */

static kval
msgid_value(const char *raw)
{
    char *id;
    kval v;

    if (raw == NULL)
        return kval_null();
    id = g_mime_utils_decode_message_id(raw);
    if (id == NULL || id[0] == '\0') {
        g_free(id);
        return kval_null();
    }
    v = str_capped(id, MAX_HEADER_VALUE);
    g_free(id);
    return v;
}

static kval
references_value(const char *raw)
{
    kval arr = kval_array();
    GMimeReferences *refs;
    int i, n;

    if (raw == NULL)
        return arr;
    refs = g_mime_references_parse(NULL, raw);
    if (refs == NULL)
        return arr;
    n = g_mime_references_length(refs);
    for (i = 0; i < n && i < MAX_HEADERS; i++)
        arr = kval_array_append(arr, str_capped(
            g_mime_references_get_message_id(refs, i), MAX_HEADER_VALUE));
    g_mime_references_free(refs);
    return arr;
}

static kval
date_value(const char *raw)
{
    GDateTime *dt, *utc;
    char *s;
    kval v;

    if (raw == NULL)
        return kval_null();
    dt = g_mime_utils_header_decode_date(raw);
    if (dt == NULL)
        return kval_null();
    utc = g_date_time_to_utc(dt);
    g_date_time_unref(dt);
    if (utc == NULL)
        return kval_null();
    /* GMime turns an unparseable date into the epoch; treat it as none */
    if (g_date_time_to_unix(utc) == 0) {
        g_date_time_unref(utc);
        return kval_null();
    }
    s = g_date_time_format(utc, "%Y-%m-%dT%H:%M:%SZ");
    g_date_time_unref(utc);
    v = s != NULL ? kval_cstr(s) : kval_null();
    g_free(s);
    return v;
}

/* ---- headers ---- */

/* The first header field called NAME (any case), or NULL. */
static GMimeHeader *
find_header(GPtrArray *hl, const char *name)
{
    guint i;

    for (i = 0; i < hl->len; i++) {
        GMimeHeader *h = g_ptr_array_index(hl, i);
        const char *n = g_mime_header_get_name(h);
        if (n != NULL && g_ascii_strcasecmp(n, name) == 0)
            return h;
    }
    return NULL;
}

/* The raw value of H as valid UTF-8 (bad bytes -> U+FFFD), g_malloc'd. */
static char *
raw_utf8(GMimeHeader *h)
{
    const char *raw = h != NULL ? g_mime_header_get_raw_value(h) : NULL;

    return raw != NULL ? g_utf8_make_valid(raw, -1) : NULL;
}

/*
 * The decoded value of H (unfolded, RFC 2047 words decoded), g_malloc'd.
 * GMime would read undeclared 8-bit bytes in a charset that depends on
 * the process locale; bytes that are not UTF-8 become U+FFFD instead.
 */
static char *
header_text(GMimeHeader *h)
{
    const char *raw = h != NULL ? g_mime_header_get_raw_value(h) : NULL;
    char *fixed, *unfolded, *text;

    if (raw == NULL)
        return NULL;
    if (g_utf8_validate(raw, -1, NULL)) {
        const char *v = g_mime_header_get_value(h);
        return g_strdup(v != NULL ? v : "");
    }
    fixed = g_utf8_make_valid(raw, -1);
    unfolded = g_mime_utils_header_unfold(fixed);
    text = g_mime_utils_header_decode_text(NULL, unfolded);
    g_free(fixed);
    g_free(unfolded);
    return text;
}

/* The addresses of the first NAME header, or NULL; unref when done. */
static InternetAddressList *
header_addresses(GPtrArray *hl, const char *name)
{
    char *raw = raw_utf8(find_header(hl, name));
    InternetAddressList *list;

    if (raw == NULL)
        return NULL;
    list = internet_address_list_parse(NULL, raw);
    g_free(raw);
    return list;
}

/*
 * "headers": lower-case name to decoded value, or an array of values (in
 * order) when the name repeats.  Values are gathered per name first so a
 * name repeated a thousand times costs no quadratic copying.
 */
static gint
by_offset(gconstpointer a, gconstpointer b)
{
    gint64 x = g_mime_header_get_offset(*(GMimeHeader *const *)a);
    gint64 y = g_mime_header_get_offset(*(GMimeHeader *const *)b);

    return x < y ? -1 : x > y;
}

/*
 * The top-level header fields in message order.  GMime 3 keeps the
 * Content-* fields of the top level on the MIME part, the rest on the
 * message; both carry their offset in the message.
 */
static GPtrArray *
all_headers(GMimeMessage *msg)
{
    GPtrArray *all = g_ptr_array_new();
    GMimeHeaderList *lists[2];
    GMimeObject *part = g_mime_message_get_mime_part(msg);
    int k, i, n;

    lists[0] = g_mime_object_get_header_list(GMIME_OBJECT(msg));
    lists[1] = part != NULL ? g_mime_object_get_header_list(part) : NULL;
    for (k = 0; k < 2; k++) {
        n = lists[k] != NULL ? g_mime_header_list_get_count(lists[k]) : 0;
        for (i = 0; i < n; i++)
            g_ptr_array_add(all,
                            g_mime_header_list_get_header_at(lists[k], i));
    }
    g_ptr_array_sort(all, by_offset);
    return all;
}

static kval
headers_value(GPtrArray *hl)
{
    GHashTable *by_name = g_hash_table_new(g_str_hash, g_str_equal);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    kval map = kval_map();
    guint i, j;

    for (i = 0; i < hl->len; i++) {
        GMimeHeader *h = g_ptr_array_index(hl, i);
        const char *name = g_mime_header_get_name(h);
        char *value, *lname;
        kval *arr;

        if (name == NULL)
            continue;
        lname = g_strdup(name);
        lower_ascii(lname);
        arr = g_hash_table_lookup(by_name, lname);
        if ((arr == NULL && names->len >= MAX_HEADERS)
            || (arr != NULL && kval_array_len(arr) >= MAX_REPEAT)) {
            g_free(lname);
            continue;
        }
        if (arr == NULL) {
            arr = xmalloc(sizeof *arr);
            *arr = kval_array();
            g_hash_table_insert(by_name, lname, arr);
            g_ptr_array_add(names, lname);
        } else {
            g_free(lname);
        }
        /* decoded only for the values we keep */
        value = header_text(h);
        *arr = kval_array_append(*arr, str_capped(value != NULL ? value : "",
                                                  MAX_HEADER_VALUE));
        g_free(value);
    }
    for (j = 0; j < names->len; j++) {
        const char *name = g_ptr_array_index(names, j);
        kval *arr = g_hash_table_lookup(by_name, name);
        if (kval_array_len(arr) == 1) {
            map = kval_map_put_str(map, name,
                                   kval_copy(kval_array_get(arr, 0)));
            kval_free(*arr);
        } else {
            map = kval_map_put_str(map, name, *arr);
        }
        free(arr);
    }
    g_hash_table_destroy(by_name);
    g_ptr_array_free(names, TRUE);
    return map;
}

/* ---- Authentication-Results (RFC 8601) ---- */

/* Copy of S without (comments), nested ones included; quotes respected. */
static char *
strip_comments(const char *s)
{
    struct buf b;
    int depth = 0, quoted = 0;

    buf_init(&b);
    for (; *s != '\0'; s++) {
        if (quoted) {
            if (*s == '\\' && s[1] != '\0') {
                buf_addc(&b, *s++);
            } else if (*s == '"') {
                quoted = 0;
            }
            buf_addc(&b, *s);
        } else if (depth > 0) {
            if (*s == '\\' && s[1] != '\0')
                s++;
            else if (*s == '(')
                depth++;
            else if (*s == ')')
                depth--;
        } else if (*s == '(') {
            depth++;
            buf_addc(&b, ' ');
        } else {
            if (*s == '"')
                quoted = 1;
            buf_addc(&b, *s);
        }
    }
    return buf_take(&b, NULL);
}

/* Record METHOD=RESULT if it is one we report; a "pass" beats the rest. */
static void
auth_result(char *res[3], const char *method, size_t mlen, const char *result,
            size_t rlen)
{
    static const char *const methods[3] = { "dkim", "spf", "dmarc" };
    int k;

    for (k = 0; k < 3; k++) {
        if (strlen(methods[k]) == mlen
            && g_ascii_strncasecmp(method, methods[k], mlen) == 0)
            break;
    }
    if (k == 3 || rlen == 0 || rlen > 64)
        return;
    if (res[k] != NULL && strcmp(res[k], "pass") == 0)
        return;
    free(res[k]);
    res[k] = xmemdup(result, rlen);
    lower_ascii(res[k]);
}

/* Parse one A-R value into RES if its authserv-id is TRUSTED. */
static void
parse_auth_results(const char *raw, const char *trusted, char *res[3])
{
    char *unfolded = g_mime_utils_header_unfold(raw);
    char *s = strip_comments(unfolded);
    const char *p = s, *id;
    size_t idlen;

    g_free(unfolded);
    while (*p == ' ' || *p == '\t')
        p++;
    id = p;
    while (*p != '\0' && *p != ';' && *p != ' ' && *p != '\t')
        p++;
    idlen = (size_t)(p - id);
    if (idlen != strlen(trusted) || g_ascii_strncasecmp(id, trusted, idlen)) {
        free(s);
        return;
    }
    /* each ";"-separated resinfo starts with method[/version]=result */
    while ((p = strchr(p, ';')) != NULL) {
        const char *m, *r;
        size_t mlen;

        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        m = p;
        while (isalnum((unsigned char)*p) || *p == '-' || *p == '_')
            p++;
        mlen = (size_t)(p - m);
        if (*p == '/') {
            while (*p != '\0' && *p != '=' && *p != ';')
                p++;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '=')
            continue;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        r = p;
        while (isalnum((unsigned char)*p) || *p == '-' || *p == '_')
            p++;
        auth_result(res, m, mlen, r, (size_t)(p - r));
    }
    free(s);
}

static kval
auth_value(GPtrArray *hl, const char *trusted)
{
    char *res[3] = { NULL, NULL, NULL };
    kval map = kval_map();
    guint i;

    for (i = 0; trusted != NULL && i < hl->len; i++) {
        GMimeHeader *h = g_ptr_array_index(hl, i);
        const char *name = g_mime_header_get_name(h);
        const char *raw = g_mime_header_get_raw_value(h);

        if (name != NULL && raw != NULL
            && g_ascii_strcasecmp(name, "Authentication-Results") == 0
            && strlen(raw) <= MAX_HEADER_VALUE)
            parse_auth_results(raw, trusted, res);
    }
    map = kval_map_put_str(map, "dkim", res[0] ? kval_cstr(res[0])
                                               : kval_null());
    map = kval_map_put_str(map, "spf", res[1] ? kval_cstr(res[1])
                                              : kval_null());
    map = kval_map_put_str(map, "dmarc", res[2] ? kval_cstr(res[2])
                                                : kval_null());
    free(res[0]);
    free(res[1]);
    free(res[2]);
    return map;
}

/* ---- bodies and attachments ---- */

/* The decoded (transfer encoding undone) content of PART, in a new array. */
static GByteArray *
part_bytes(GMimePart *part)
{
    GMimeDataWrapper *w = g_mime_part_get_content(part);
    GMimeStream *s = g_mime_stream_mem_new();
    GByteArray *ba, *out;

    if (w != NULL)
        g_mime_data_wrapper_write_to_stream(w, s);
    ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
    out = g_byte_array_sized_new(ba->len);
    g_byte_array_append(out, ba->data, ba->len);
    g_object_unref(s);
    return out;
}

/* lf_lines - V with its CR LF line ends made LF, as a KRL rule (like a
 * JavaScript one) expects text to end its lines; consumes V */
static kval
lf_lines(kval v)
{
    const char *s = kval_str_ptr(&v);
    size_t n = kval_str_bytes(&v), j = 0;
    if (memchr(s, '\r', n) == NULL)
        return v;
    char *out = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
            out[j++] = s[i];
    out[j] = '\0';
    kval_free(v);
    return kval_str_take(out, j);
}

/* Bytes in the part's charset to a UTF-8 string value, capped at MAX,
 * with LF line ends. */
static kval text_value_raw(GMimeObject *obj, const GByteArray *ba,
                           size_t max);

static kval
text_value(GMimeObject *obj, const GByteArray *ba, size_t max)
{
    return lf_lines(text_value_raw(obj, ba, max));
}

static kval
text_value_raw(GMimeObject *obj, const GByteArray *ba, size_t max)
{
    const char *cs = g_mime_object_get_content_type_parameter(obj, "charset");
    const char *canon = cs != NULL ? g_mime_charset_canon_name(cs) : NULL;
    kval v;

    if (canon != NULL && g_ascii_strcasecmp(canon, "utf-8") != 0
        && g_ascii_strcasecmp(canon, "us-ascii") != 0) {
        iconv_t cd = g_mime_iconv_open("UTF-8", cs);
        if (cd != (iconv_t)-1) {
            char *u = g_mime_iconv_strndup(cd, (const char *)ba->data,
                                           ba->len);
            g_mime_iconv_close(cd);
            if (u != NULL) {
                v = kval_str(u, utf8_cut(u, strlen(u), max));
                g_free(u);
                return v;
            }
        }
    }
    /* UTF-8, ASCII, no charset or an unknown one: invalid bytes -> U+FFFD */
    return kval_str((const char *)ba->data,
                    utf8_cut((const char *)ba->data, ba->len, max));
}

static void
sha256_hex(const unsigned char *p, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    static const char hex[] = "0123456789abcdef";

    if (EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL) != 1)
        mdlen = 0;
    for (i = 0; i < mdlen && i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * i] = '\0';
}

static void
add_attachment(struct walk *w, const char *filename, const char *ctype,
               const unsigned char *data, size_t len)
{
    struct mime_attachment *a;
    size_t keep;
    kval m;

    if (w->n_atts >= MAX_ATTACHMENTS)
        return;
    if (w->n_atts == w->cap_atts) {
        w->cap_atts = w->cap_atts ? 2 * w->cap_atts : 4;
        w->atts = xreallocarray(w->atts, w->cap_atts, sizeof *w->atts);
    }
    a = &w->atts[w->n_atts++];
    memset(a, 0, sizeof *a);
    if (filename != NULL) {
        /* the store gets the same UTF-8 name as the event */
        char *valid = g_utf8_make_valid(filename, -1);
        a->filename = xmemdup(valid, utf8_cut(valid, strlen(valid),
                                              MAX_FILENAME));
        g_free(valid);
    }
    a->content_type = xstrdup(ctype);
    a->size = len;
    sha256_hex(data, len, a->sha256);
    keep = len < w->opt->max_attachment_keep ? len
                                             : w->opt->max_attachment_keep;
    if (keep > 0) {
        a->data = xmalloc(keep);
        memcpy(a->data, data, keep);
        a->data_len = keep;
    }
    m = kval_map();
    m = kval_map_put_str(m, "filename", a->filename != NULL
                                            ? kval_cstr(a->filename)
                                            : kval_null());
    m = kval_map_put_str(m, "content_type", kval_cstr(a->content_type));
    m = kval_map_put_str(m, "size", kval_number((double)a->size));
    m = kval_map_put_str(m, "sha256", kval_cstr(a->sha256));
    w->att_list = kval_array_append(w->att_list, m);
}

/* "type/subtype" of OBJ, lower-case, malloc'd. */
static char *
mime_type_of(GMimeObject *obj)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    char *g = ct != NULL ? g_mime_content_type_get_mime_type(ct) : NULL;
    char *s = xstrdup(g != NULL ? g : "application/octet-stream");

    g_free(g);
    lower_ascii(s);
    return s;
}

/* When V (a string) is a JSON object once trimmed, its value; else null. */
static kval
json_object_of(const kval *v)
{
    const char *s = kval_str_ptr(v);
    size_t len = kval_str_bytes(v);
    kval j;

    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len < 2 || s[0] != '{' || s[len - 1] != '}')
        return kval_null();
    j = json_parse(s, len);
    if (kval_kind(&j) != KV_MAP) {
        kval_free(j);
        return kval_null();
    }
    return j;
}

static void
walk_leaf(struct walk *w, GMimePart *part)
{
    GMimeObject *obj = GMIME_OBJECT(part);
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    int is_att = g_mime_part_is_attachment(part);
    GByteArray *ba;

    if (!is_att && ct != NULL
        && g_mime_content_type_is_type(ct, "text", "plain")) {
        if (kval_is_null(&w->text)) {
            ba = part_bytes(part);
            w->text = text_value(obj, ba, w->msg_len);
            g_byte_array_unref(ba);
        }
        return;
    }
    if (!is_att && ct != NULL
        && g_mime_content_type_is_type(ct, "text", "html")) {
        if (kval_is_null(&w->html)) {
            ba = part_bytes(part);
            w->html = text_value(obj, ba, w->msg_len);
            g_byte_array_unref(ba);
        }
        return;
    }
    /* other inline text parts are neither body nor attachment */
    if (!is_att && ct != NULL && g_mime_content_type_is_type(ct, "text", "*"))
        return;

    ba = part_bytes(part);
    {
        char *type = mime_type_of(obj);
        add_attachment(w, g_mime_part_get_filename(part), type, ba->data,
                       ba->len);
        if (strcmp(type, "application/json") == 0
            && kval_is_null(&w->json)) {
            kval s = text_value(obj, ba, w->msg_len);
            w->json = json_object_of(&s);
            kval_free(s);
        }
        free(type);
    }
    g_byte_array_unref(ba);
}

static void
walk_object(struct walk *w, GMimeObject *obj, int depth)
{
    if (obj == NULL || depth > MAX_DEPTH)
        return;
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int i, n = g_mime_multipart_get_count(mp);
        for (i = 0; i < n; i++)
            walk_object(w, g_mime_multipart_get_part(mp, i), depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        /* an attached message is one attachment: its whole text */
        GMimeMessage *m = g_mime_message_part_get_message(
            GMIME_MESSAGE_PART(obj));
        GMimeStream *s = g_mime_stream_mem_new();
        GByteArray *ba;
        char *type = mime_type_of(obj);

        if (m != NULL)
            g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, s);
        ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
        add_attachment(w, g_mime_object_get_content_disposition_parameter(
                              obj, "filename"),
                       type, ba->data, ba->len);
        free(type);
        g_object_unref(s);
    } else if (GMIME_IS_PART(obj)) {
        walk_leaf(w, GMIME_PART(obj));
    }
}

/* ---- the whole message ---- */

static kval
put_json_members(kval attrs, const kval *obj)
{
    struct kval_map_iter it;
    const kval *k, *v;

    if (kval_kind(obj) != KV_MAP)
        return attrs;
    kval_map_iter_init(&it, obj);
    while (kval_map_iter_next(&it, &k, &v)) {
        /* envelope belongs to the LMTP layer, which adds it later */
        if (kval_map_has(&attrs, k)
            || strcmp(kval_str_ptr(k), "envelope") == 0)
            continue;
        attrs = kval_map_put(attrs, kval_copy(k), kval_copy(v));
    }
    kval_map_iter_done(&it);
    return attrs;
}

static kval
take_text(char *s, kval (*conv)(const char *))
{
    kval v = conv(s);

    g_free(s);
    return v;
}

static kval
capped_text(const char *s)
{
    return str_capped(s, MAX_HEADER_VALUE);
}

static kval
build_attrs(GMimeMessage *msg, struct walk *w)
{
    GPtrArray *hl = all_headers(msg);
    InternetAddressList *from_l = header_addresses(hl, "From");
    InternetAddressList *reply_l = header_addresses(hl, "Reply-To");
    InternetAddressList *to_l = header_addresses(hl, "To");
    InternetAddressList *cc_l = header_addresses(hl, "Cc");
    InternetAddressMailbox *from = first_mailbox(from_l, 0);
    InternetAddressMailbox *reply = first_mailbox(reply_l, 0);
    kval attrs = kval_map(), body_json;
    const char *name;

    attrs = kval_map_put_str(attrs, "from", from != NULL
        ? capped_text(internet_address_mailbox_get_addr(from))
        : kval_null());
    name = from != NULL ? internet_address_get_name(INTERNET_ADDRESS(from))
                        : NULL;
    attrs = kval_map_put_str(attrs, "from_name", name != NULL && name[0]
        ? capped_text(name) : kval_null());
    attrs = kval_map_put_str(attrs, "to",
                             add_addresses(kval_array(), to_l, 0));
    attrs = kval_map_put_str(attrs, "cc",
                             add_addresses(kval_array(), cc_l, 0));
    attrs = kval_map_put_str(attrs, "reply_to", reply != NULL
        ? capped_text(internet_address_mailbox_get_addr(reply))
        : kval_null());
    attrs = kval_map_put_str(attrs, "subject",
        take_text(header_text(find_header(hl, "Subject")), capped_text));
    attrs = kval_map_put_str(attrs, "date",
        take_text(raw_utf8(find_header(hl, "Date")), date_value));
    attrs = kval_map_put_str(attrs, "message_id",
        take_text(raw_utf8(find_header(hl, "Message-ID")), msgid_value));
    attrs = kval_map_put_str(attrs, "in_reply_to",
        take_text(raw_utf8(find_header(hl, "In-Reply-To")), msgid_value));
    attrs = kval_map_put_str(attrs, "references",
        take_text(raw_utf8(find_header(hl, "References")),
                  references_value));
    if (from_l != NULL)
        g_object_unref(from_l);
    if (reply_l != NULL)
        g_object_unref(reply_l);
    if (to_l != NULL)
        g_object_unref(to_l);
    if (cc_l != NULL)
        g_object_unref(cc_l);

    walk_object(w, g_mime_message_get_mime_part(msg), 0);
    attrs = kval_map_put_str(attrs, "text", kval_copy(&w->text));
    attrs = kval_map_put_str(attrs, "html", kval_copy(&w->html));
    attrs = kval_map_put_str(attrs, "headers", headers_value(hl));
    attrs = kval_map_put_str(attrs, "attachments", kval_copy(&w->att_list));
    attrs = kval_map_put_str(attrs, "auth",
                             auth_value(hl, w->opt->trusted_authserv));

    body_json = kval_is_null(&w->text) ? kval_null()
                                       : json_object_of(&w->text);
    attrs = put_json_members(attrs, &body_json);
    attrs = put_json_members(attrs, &w->json);
    kval_free(body_json);
    g_ptr_array_free(hl, TRUE);
    return attrs;
}

static GMimeMessage *
construct(const char *msg, size_t len)
{
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(msg, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *m;

    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    m = g_mime_parser_construct_message(parser, NULL);
    g_object_unref(parser);
    g_object_unref(stream);
    return m;
}

int
mime_parse(const char *msg, size_t len, const struct mime_options *opt,
           struct mime_result *out, char *err, size_t errlen)
{
    static const struct mime_options defaults = { 0, NULL };
    GMimeMessage *m;
    struct walk w;

    memset(out, 0, sizeof *out);
    out->attrs = kval_null();
    if (msg == NULL || !has_header_block(msg, len)) {
        snprintf(err, errlen, "not a mail message: no header block");
        return -1;
    }
    mime_init();
    m = construct(msg, len);
    if (m == NULL) {
        /* GMime gives up on a last header line cut before its colon
         * (a truncated message): try again without that line */
        size_t nl = len;
        while (nl > 0 && msg[nl - 1] != '\n')
            nl--;
        if (nl > 1 && nl < len)
            m = construct(msg, nl);
    }
    if (m == NULL) {
        snprintf(err, errlen, "not a mail message: unparseable headers");
        return -1;
    }

    memset(&w, 0, sizeof w);
    w.opt = opt != NULL ? opt : &defaults;
    w.msg_len = len;
    w.text = kval_null();
    w.html = kval_null();
    w.json = kval_null();
    w.att_list = kval_array();
    out->attrs = build_attrs(m, &w);
    out->attachments = w.atts;
    out->n_attachments = w.n_atts;
    kval_free(w.text);
    kval_free(w.html);
    kval_free(w.json);
    kval_free(w.att_list);
    g_object_unref(m);
    return 0;
}

void
mime_result_release(struct mime_result *r)
{
    size_t i;

    if (r == NULL)
        return;
    kval_free(r->attrs);
    for (i = 0; i < r->n_attachments; i++) {
        free(r->attachments[i].filename);
        free(r->attachments[i].content_type);
        free(r->attachments[i].data);
    }
    free(r->attachments);
    memset(r, 0, sizeof *r);
    r->attrs = kval_null();
}
