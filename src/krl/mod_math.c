/*
 * mod_math.c - the KRL math: module (krl-language.md §7.6): base64 with
 * Node's Buffer encodings, hashes and HMACs through OpenSSL's EVP
 * interface under the names Node's crypto.getHashes() lists, and lodash's
 * abs/ceil/floor/round with a decimal precision.
 */
#include "picomail/modules.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "picomail/buf.h"
#include "picomail/builtin.h"
#include "picomail/mem.h"
#include "picomail/ops.h"
#include "picomail/value.h"
#include "lib_type_internal.h"
#include "modules_internal.h"

/* ---- text and bytes ---- */

/* One UTF-8/WTF-8 sequence at S (N > 0 bytes): its length, and the code
 * point (a lone surrogate as itself) in *CP. */
static size_t
utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80 || n < 2) {
        *cp = s[0] < 0x80 ? s[0] : 0xFFFD;
        return 1;
    }
    if (s[0] < 0xE0 || n < 3) {
        *cp = ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (s[0] < 0xF0 || n < 4) {
        *cp = ((uint32_t)(s[0] & 0x0F) << 12) |
              ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

/* The UTF-8 bytes Node writes for a string: lone surrogates (kept as WTF-8
 * in our strings) become U+FFFD. */
static void
node_utf8(const char *s, size_t n, struct buf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        uint32_t cp;
        size_t k = utf8_next(p + i, n - i, &cp);
        if (k == 3 && cp >= 0xD800 && cp <= 0xDFFF)
            buf_add(out, "\xEF\xBF\xBD", 3);
        else
            buf_add(out, p + i, k);
        i += k;
    }
}

/* The UTF-16 code units of a string (for latin1/ascii/utf16le). */
static uint16_t *
utf16_units(const char *s, size_t n, size_t *count)
{
    const unsigned char *p = (const unsigned char *)s;
    uint16_t *u = xcalloc(n + 1, sizeof *u);
    size_t i = 0, m = 0;

    while (i < n) {
        uint32_t cp;
        i += utf8_next(p + i, n - i, &cp);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            u[m++] = (uint16_t)(0xD800 | (cp >> 10));
            u[m++] = (uint16_t)(0xDC00 | (cp & 0x3FF));
        } else {
            u[m++] = (uint16_t)cp;
        }
    }
    *count = m;
    return u;
}

/* WHATWG UTF-8 decoding: each maximal invalid subpart becomes U+FFFD. */
static void
utf8_decode(const unsigned char *s, size_t n, struct buf *out)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t need, k;
        unsigned char lo = 0x80, hi = 0xBF;

        if (c < 0x80) {
            buf_addc(out, (char)c);
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            buf_add(out, "\xEF\xBF\xBD", 3);
            i++;
            continue;
        }
        for (k = 1; k <= need; k++) {
            if (i + k >= n || s[i + k] < lo || s[i + k] > hi)
                break;
            lo = 0x80;
            hi = 0xBF;
        }
        if (k <= need) {
            buf_add(out, "\xEF\xBF\xBD", 3);
            i += k;
        } else {
            buf_add(out, s + i, need + 1);
            i += need + 1;
        }
    }
}

static const char b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
base64_encode(const unsigned char *p, size_t n, bool url, struct buf *out)
{
    const char *tab = url ? b64_url : b64_std;
    size_t i;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) |
                     p[i + 2];
        buf_addc(out, tab[v >> 18]);
        buf_addc(out, tab[(v >> 12) & 63]);
        buf_addc(out, tab[(v >> 6) & 63]);
        buf_addc(out, tab[v & 63]);
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        buf_addc(out, tab[v >> 18]);
        buf_addc(out, tab[(v >> 12) & 63]);
        if (i + 1 < n)
            buf_addc(out, tab[(v >> 6) & 63]);
        if (!url)
            buf_adds(out, i + 1 < n ? "=" : "==");
    }
}

static int
b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* As Node's Buffer: both alphabets, other characters skipped, the first
 * '=' ends the data, a lone trailing character is dropped. */
static void
base64_decode(const char *s, size_t n, struct buf *out)
{
    uint32_t acc = 0;
    int have = 0;

    for (size_t i = 0; i < n && s[i] != '='; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0)
            continue;
        acc = (acc << 6) | (uint32_t)v;
        if (++have == 4) {
            buf_addc(out, (char)(acc >> 16));
            buf_addc(out, (char)(acc >> 8));
            buf_addc(out, (char)acc);
            acc = 0;
            have = 0;
        }
    }
    if (have == 2) {
        buf_addc(out, (char)(acc >> 4));
    } else if (have == 3) {
        buf_addc(out, (char)(acc >> 10));
        buf_addc(out, (char)(acc >> 2));
    }
}

static int
hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void
hex_encode(const unsigned char *p, size_t n, struct buf *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        buf_addc(out, digits[p[i] >> 4]);
        buf_addc(out, digits[p[i] & 15]);
    }
}

enum encoding {
    ENC_UNKNOWN, ENC_UTF8, ENC_HEX, ENC_LATIN1, ENC_ASCII, ENC_BASE64,
    ENC_BASE64URL, ENC_UTF16LE
};

/* Node's encoding names, matched without regard to case; a non-string or
 * empty name means utf8. */
static enum encoding
encoding_of(const kval *v)
{
    static const struct {
        const char *name;
        enum encoding enc;
    } names[] = {
        {"utf8", ENC_UTF8}, {"utf-8", ENC_UTF8}, {"hex", ENC_HEX},
        {"latin1", ENC_LATIN1}, {"binary", ENC_LATIN1},
        {"ascii", ENC_ASCII}, {"base64", ENC_BASE64},
        {"base64url", ENC_BASE64URL}, {"utf16le", ENC_UTF16LE},
        {"utf-16le", ENC_UTF16LE}, {"ucs2", ENC_UTF16LE},
        {"ucs-2", ENC_UTF16LE},
    };

    if (kval_kind(v) != KV_STRING || kval_str_bytes(v) == 0)
        return ENC_UTF8;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (kval_str_bytes(v) == strlen(names[i].name) &&
            strcasecmp(kval_str_ptr(v), names[i].name) == 0)
            return names[i].enc;
    return ENC_UNKNOWN;
}

static kval
unknown_encoding(const kval *v)
{
    return kval_error("TypeError [ERR_UNKNOWN_ENCODING]: Unknown encoding: "
                      "%s", kval_str_ptr(v));
}

/* Buffer.from(S, ENC) */
static void
string_to_bytes(const char *s, size_t n, enum encoding enc, struct buf *out)
{
    uint16_t *u;
    size_t m;

    switch (enc) {
    case ENC_HEX:
        /* pairs of hex digits up to the first pair that is not one */
        for (size_t i = 0; i + 1 < n; i += 2) {
            int a = hex_value((unsigned char)s[i]);
            int b = hex_value((unsigned char)s[i + 1]);
            if (a < 0 || b < 0)
                break;
            buf_addc(out, (char)(a * 16 + b));
        }
        break;
    case ENC_LATIN1:
    case ENC_ASCII:
        u = utf16_units(s, n, &m);
        for (size_t i = 0; i < m; i++)
            buf_addc(out, (char)(u[i] & 0xFF));
        free(u);
        break;
    case ENC_UTF16LE:
        u = utf16_units(s, n, &m);
        for (size_t i = 0; i < m; i++) {
            buf_addc(out, (char)(u[i] & 0xFF));
            buf_addc(out, (char)(u[i] >> 8));
        }
        free(u);
        break;
    case ENC_BASE64:
    case ENC_BASE64URL:
        base64_decode(s, n, out);
        break;
    default:
        node_utf8(s, n, out);
        break;
    }
}

/* buffer.toString(ENC) as a KRL string */
static kval
bytes_to_string(const unsigned char *p, size_t n, enum encoding enc)
{
    struct buf b;
    kval r;

    buf_init(&b);
    switch (enc) {
    case ENC_HEX:
        hex_encode(p, n, &b);
        break;
    case ENC_LATIN1:
    case ENC_ASCII:
        for (size_t i = 0; i < n; i++) {
            unsigned c = enc == ENC_ASCII ? (p[i] & 0x7Fu) : p[i];
            if (c < 0x80) {
                buf_addc(&b, (char)c);
            } else {
                buf_addc(&b, (char)(0xC0 | (c >> 6)));
                buf_addc(&b, (char)(0x80 | (c & 0x3F)));
            }
        }
        break;
    case ENC_BASE64:
    case ENC_BASE64URL:
        base64_encode(p, n, enc == ENC_BASE64URL, &b);
        break;
    case ENC_UTF16LE: {
        uint16_t *u = xcalloc(n / 2 + 1, sizeof *u);
        for (size_t i = 0; i + 1 < n; i += 2)
            u[i / 2] = (uint16_t)(p[i] | (p[i + 1] << 8));
        r = kval_str_from16(u, n / 2);
        free(u);
        buf_release(&b);
        return r;
    }
    default:
        utf8_decode(p, n, &b);
        break;
    }
    r = kval_str(b.data, b.len);
    buf_release(&b);
    return r;
}

/* ---- base64 ---- */

static kval
math_base64encode(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    const kval *enc_arg = builtin_arg(args, n, 1);
    enum encoding enc = encoding_of(enc_arg);
    struct buf s, bytes, out;
    kval r;

    (void)vm;
    (void)data;
    if (enc == ENC_UNKNOWN)
        return unknown_encoding(enc_arg);
    buf_init(&s);
    buf_init(&bytes);
    buf_init(&out);
    mod_krl_string(builtin_arg(args, n, 0), &s);
    string_to_bytes(s.data, s.len, enc, &bytes);
    base64_encode((const unsigned char *)bytes.data, bytes.len, false, &out);
    r = kval_str(out.data, out.len);
    buf_release(&s);
    buf_release(&bytes);
    buf_release(&out);
    return r;
}

static kval
math_base64decode(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    const kval *enc_arg = builtin_arg(args, n, 1);
    enum encoding enc = encoding_of(enc_arg);
    struct buf s, bytes;
    kval r;

    (void)vm;
    (void)data;
    buf_init(&s);
    buf_init(&bytes);
    mod_krl_string(builtin_arg(args, n, 0), &s);
    base64_decode(s.data, s.len, &bytes);
    /* Node checks the name only when there are bytes to convert */
    if (enc == ENC_UNKNOWN && bytes.len > 0)
        r = unknown_encoding(enc_arg);
    else
        r = bytes_to_string((const unsigned char *)bytes.data, bytes.len,
                            enc);
    buf_release(&s);
    buf_release(&bytes);
    return r;
}

/* ---- hashes ---- */

/* crypto.getHashes() of Node 20 on OpenSSL 3; the ones this OpenSSL
 * cannot compute are left out at run time. */
static const char *const hash_names[] = {
    "RSA-MD5", "RSA-RIPEMD160", "RSA-SHA1", "RSA-SHA1-2", "RSA-SHA224",
    "RSA-SHA256", "RSA-SHA3-224", "RSA-SHA3-256", "RSA-SHA3-384",
    "RSA-SHA3-512", "RSA-SHA384", "RSA-SHA512", "RSA-SHA512/224",
    "RSA-SHA512/256", "RSA-SM3", "blake2b512", "blake2s256",
    "id-rsassa-pkcs1-v1_5-with-sha3-224", "id-rsassa-pkcs1-v1_5-with-sha3-256",
    "id-rsassa-pkcs1-v1_5-with-sha3-384", "id-rsassa-pkcs1-v1_5-with-sha3-512",
    "md5", "md5-sha1", "md5WithRSAEncryption", "ripemd", "ripemd160",
    "ripemd160WithRSA", "rmd160", "sha1", "sha1WithRSAEncryption", "sha224",
    "sha224WithRSAEncryption", "sha256", "sha256WithRSAEncryption",
    "sha3-224", "sha3-256", "sha3-384", "sha3-512", "sha384",
    "sha384WithRSAEncryption", "sha512", "sha512-224",
    "sha512-224WithRSAEncryption", "sha512-256", "sha512-256WithRSAEncryption",
    "sha512WithRSAEncryption", "shake128", "shake256", "sm3",
    "sm3WithRSAEncryption", "ssl3-md5", "ssl3-sha1",
};
#define N_HASHES (sizeof hash_names / sizeof hash_names[0])

static bool hash_ok[N_HASHES];
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;

static void
probe_hashes(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    for (size_t i = 0; i < N_HASHES; i++) {
        const EVP_MD *md = EVP_get_digestbyname(hash_names[i]);
        hash_ok[i] = md != NULL && ctx != NULL &&
                     EVP_DigestInit_ex(ctx, md, NULL) == 1;
    }
    EVP_MD_CTX_free(ctx);
}

static const EVP_MD *
find_hash(const kval *name)
{
    pthread_once(&hash_once, probe_hashes);
    if (kval_kind(name) != KV_STRING)
        return NULL;
    for (size_t i = 0; i < N_HASHES; i++)
        if (hash_ok[i] && strcmp(hash_names[i], kval_str_ptr(name)) == 0 &&
            strlen(hash_names[i]) == kval_str_bytes(name))
            return EVP_get_digestbyname(hash_names[i]);
    return NULL;
}

static kval
hash_algorithms(void)
{
    kval a = kval_array();

    pthread_once(&hash_once, probe_hashes);
    for (size_t i = 0; i < N_HASHES; i++)
        if (hash_ok[i])
            a = kval_array_append(a, kval_cstr(hash_names[i]));
    return a;
}

static kval
math_hashFunctions(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    /* deprecated for math:hashAlgorithms; the reference logs a warning */
    (void)vm;
    (void)data;
    (void)args;
    (void)n;
    return hash_algorithms();
}

static kval
bad_algorithm(const char *fn, const kval *alg)
{
    kval s, e;

    if (kval_kind(alg) == KV_STRING)
        return kval_error("Error: math:%s doesn't recognize the hash "
                          "algorithm %s", fn, kval_str_ptr(alg));
    s = op_to_string(alg);
    e = kval_error("TypeError: math:%s was given %s instead of a algorithm "
                   "string", fn, kval_str_ptr(&s));
    kval_free(s);
    return e;
}

/* `encoding || "hex"`, which must then be "hex" or "base64"; 0 on error */
static int
digest_encoding(const char *fn, const kval *v, kval *err)
{
    struct buf b;

    if (!kval_truthy(v))
        return 'h';
    if (kval_kind(v) == KV_STRING && strcmp(kval_str_ptr(v), "hex") == 0)
        return 'h';
    if (kval_kind(v) == KV_STRING && strcmp(kval_str_ptr(v), "base64") == 0)
        return 'b';
    buf_init(&b);
    lib_type_js_string(v, &b);
    *err = kval_error("Error: math:%s encoding must be \"hex\" or \"base64\" "
                      "but was %s", fn, b.data);
    buf_release(&b);
    return 0;
}

static kval
encode_digest(const unsigned char *md, size_t len, int enc)
{
    struct buf b;
    kval r;

    buf_init(&b);
    if (enc == 'h')
        hex_encode(md, len, &b);
    else
        base64_encode(md, len, false, &b);
    r = kval_str(b.data, b.len);
    buf_release(&b);
    return r;
}

static kval
math_hash(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    const kval *alg = builtin_arg(args, n, 0);
    const EVP_MD *md = find_hash(alg);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    struct buf s, bytes;
    kval err;
    int enc, ok;

    (void)vm;
    (void)data;
    if (md == NULL)
        return bad_algorithm("hash", alg);
    enc = digest_encoding("hash", builtin_arg(args, n, 2), &err);
    if (enc == 0)
        return err;
    buf_init(&s);
    buf_init(&bytes);
    mod_krl_string(builtin_arg(args, n, 1), &s);
    node_utf8(s.data, s.len, &bytes);
    ok = EVP_Digest(bytes.data, bytes.len, out, &len, md, NULL);
    buf_release(&s);
    buf_release(&bytes);
    if (ok != 1)
        return kval_error("Error: math:hash could not compute %s",
                          kval_str_ptr(alg));
    return encode_digest(out, len, enc);
}

static kval
math_hmac(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    const kval *alg = builtin_arg(args, n, 0);
    const kval *key = builtin_arg(args, n, 1);
    const EVP_MD *md;
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    struct buf k, m, kb, mb;
    kval err;
    int enc;
    bool ok;

    (void)vm;
    (void)data;
    if (kval_kind(key) != KV_STRING)
        return kval_error("Error: math:hmac needs a key string");
    md = find_hash(alg);
    if (md == NULL)
        return bad_algorithm("hmac", alg);
    enc = digest_encoding("hmac", builtin_arg(args, n, 3), &err);
    if (enc == 0)
        return err;
    buf_init(&k);
    buf_init(&m);
    buf_init(&kb);
    buf_init(&mb);
    mod_krl_string(key, &k);
    mod_krl_string(builtin_arg(args, n, 2), &m);
    node_utf8(k.data, k.len, &kb);
    node_utf8(m.data, m.len, &mb);
    ok = kb.len <= INT32_MAX &&
         HMAC(md, kb.data, (int)kb.len, (const unsigned char *)mb.data,
              mb.len, out, &len) != NULL;
    buf_release(&k);
    buf_release(&m);
    buf_release(&kb);
    buf_release(&mb);
    if (!ok)    /* e.g. shake128, which Node refuses too */
        return kval_error("Error: math:hmac cannot use the hash algorithm %s",
                          kval_str_ptr(alg));
    return encode_digest(out, len, enc);
}

/* ---- numbers ---- */

static kval
math_abs(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)vm;
    (void)data;
    return kval_number(fabs(mod_js_number(builtin_arg(args, n, 0))));
}

/* lodash's toInteger: NaN 0, infinities the largest double, truncated */
static double
to_integer(double d)
{
    if (isnan(d))
        return 0;
    if (isinf(d))
        d = d > 0 ? 1.7976931348623157e308 : -1.7976931348623157e308;
    return trunc(d);
}

/* The mantissa and exponent of the JavaScript form of D ("1.5e-7" gives
 * 1.5 and -7), as lodash splits String(number) on "e". */
static void
split_exp(double d, char *mant, size_t cap, double *exp)
{
    char s[KVAL_NUM_BUFSIZE];
    size_t len = kval_num_format(d, s);
    char *e = memchr(s, 'e', len);
    size_t ml = e != NULL ? (size_t)(e - s) : len;

    if (ml >= cap)
        ml = cap - 1;
    memcpy(mant, s, ml);
    mant[ml] = '\0';
    *exp = 0;
    if (e != NULL && !kval_num_parse(e + 1, len - (size_t)(e + 1 - s), exp))
        *exp = 0;
}

/* Number(MANT + "e" + EXP) */
static double
join_exp(const char *mant, double exp)
{
    char num[KVAL_NUM_BUFSIZE], s[2 * KVAL_NUM_BUFSIZE + 2];
    size_t nl = kval_num_format(exp, num);
    size_t ml = strlen(mant);
    double d;

    memcpy(s, mant, ml);
    s[ml] = 'e';
    memcpy(s + ml + 1, num, nl);
    s[ml + 1 + nl] = '\0';
    return kval_num_parse(s, ml + 1 + nl, &d) ? d : NAN;
}

/* lodash's createRound: shift by PRECISION decimal places through the
 * exponential notation (so 1.005 rounds to 1.01), round, shift back. */
static kval
lodash_round(double (*fn)(double), const kval *num, const kval *prec)
{
    double x = mod_js_number(num), p = 0, e, v;
    char mant[KVAL_NUM_BUFSIZE];

    if (!kval_is_null(prec)) {
        p = to_integer(mod_js_number(prec));
        if (p > 292)
            p = 292;
    }
    if (p == 0 || !isfinite(x))
        return kval_number(fn(x));
    split_exp(x, mant, sizeof mant, &e);
    v = fn(join_exp(mant, e + p));
    split_exp(v, mant, sizeof mant, &e);
    return kval_number(join_exp(mant, e - p));
}

static kval
math_ceiling(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)vm;
    (void)data;
    return lodash_round(ceil, builtin_arg(args, n, 0),
                        builtin_arg(args, n, 1));
}

static kval
math_floor(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)vm;
    (void)data;
    return lodash_round(floor, builtin_arg(args, n, 0),
                        builtin_arg(args, n, 1));
}

static kval
math_round(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    (void)vm;
    (void)data;
    return lodash_round(mod_js_round, builtin_arg(args, n, 0),
                        builtin_arg(args, n, 1));
}

static kval
math_int(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    double x = mod_js_number(builtin_arg(args, n, 0));

    (void)vm;
    (void)data;
    return kval_number(x >= 0 ? floor(x) : ceil(x));
}

#define FN KV_FN_FUNCTION

const struct krl_module_entry mod_math_entries[] = {
    {"base64encode", math_base64encode, FN, {"str", "str"}, NULL},
    {"base64decode", math_base64decode, FN, {"str", "str"}, NULL},
    {"hashAlgorithms", NULL, 0, {NULL}, hash_algorithms},
    {"hashFunctions", math_hashFunctions, FN, {NULL}, NULL},
    {"hash", math_hash, FN, {"algorithm", "str", "encoding"}, NULL},
    {"hmac", math_hmac, FN, {"algorithm", "key", "message", "encoding"},
     NULL},
    {"abs", math_abs, FN, {"number"}, NULL},
    {"ceiling", math_ceiling, FN, {"number", "precision"}, NULL},
    {"floor", math_floor, FN, {"number", "precision"}, NULL},
    {"int", math_int, FN, {"number"}, NULL},
    {"round", math_round, FN, {"number", "precision"}, NULL},
    {NULL, NULL, 0, {NULL}, NULL},
};
