/*
 * mod_random.c - the KRL random: module (krl-language.md §7.6): cuid-style
 * ids, a random English word, and integers and numbers in a range as
 * lodash's _.random draws them.  All randomness comes from getrandom(2).
 */
#include "picomail/modules.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "picomail/buf.h"
#include "picomail/builtin.h"
#include "picomail/ops.h"
#include "picomail/value.h"
#include "modules_internal.h"

/* ---- uuid: a cuid ---- */

#define CUID_BLOCK 4
#define CUID_DISCRETE (36 * 36 * 36 * 36)

static atomic_uint cuid_counter;

/* the last SIZE base-36 digits of N, zero-padded (cuid's pad) */
static void
add_base36(struct buf *out, uint64_t n, size_t size)
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    char tmp[16];
    size_t len = 0;

    do {
        tmp[len++] = digits[n % 36];
        n /= 36;
    } while (n > 0 && len < sizeof tmp);
    for (size_t i = len; i < size; i++)
        buf_addc(out, '0');
    for (size_t i = len < size ? len : size; i > 0; i--)
        buf_addc(out, tmp[i - 1]);
}

static void
add_base36_all(struct buf *out, uint64_t n)
{
    uint64_t t = n;
    size_t len = 0;

    do {
        len++;
        t /= 36;
    } while (t > 0);
    add_base36(out, n, len);
}

/* cuid's fingerprint: two digits of the pid, two of a hostname sum */
static uint64_t
host_id(void)
{
    char host[256];
    uint64_t sum;
    size_t len;

    if (gethostname(host, sizeof host) != 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';
    len = strlen(host);
    sum = len + 36;
    for (size_t i = 0; i < len; i++)
        sum += (unsigned char)host[i];
    return sum;
}

static kval
random_uuid(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    struct timespec ts;
    struct buf b;
    unsigned c;
    kval r;

    (void)vm;
    (void)data;
    (void)args;
    (void)n;
    clock_gettime(CLOCK_REALTIME, &ts);
    c = atomic_fetch_add(&cuid_counter, 1u) % CUID_DISCRETE;
    buf_init(&b);
    buf_addc(&b, 'c');
    add_base36_all(&b, (uint64_t)ts.tv_sec * 1000u +
                           (uint64_t)ts.tv_nsec / 1000000u);
    add_base36(&b, c, CUID_BLOCK);
    add_base36(&b, (uint64_t)getpid(), 2);
    add_base36(&b, host_id(), 2);
    for (int i = 0; i < 2; i++)
        add_base36(&b, (uint64_t)(mod_random_unit() * CUID_DISCRETE),
                   CUID_BLOCK);
    r = kval_str(b.data, b.len);
    buf_release(&b);
    return r;
}

/* ---- word ---- */

static const char *const words[] = {
    "able", "about", "above", "accept", "across", "act", "add", "afraid",
    "after", "again", "against", "age", "ago", "agree", "air", "all",
    "allow", "almost", "alone", "along", "already", "always", "among",
    "amount", "angle", "angry", "animal", "answer", "any", "apple", "area",
    "arm", "army", "around", "arrive", "art", "ask", "atom", "baby", "back",
    "bad", "ball", "band", "bank", "bar", "base", "basic", "bear", "beat",
    "beauty", "bed", "before", "began", "begin", "behind", "believe", "bell",
    "best", "better", "between", "big", "bird", "bit", "black", "block",
    "blood", "blow", "blue", "board", "boat", "body", "bone", "book", "born",
    "both", "bottom", "box", "boy", "branch", "bread", "break", "bright",
    "bring", "broad", "brother", "brown", "build", "burn", "busy", "buy",
    "call", "calm", "camp", "capital", "captain", "car", "card", "care",
    "carry", "case", "cat", "catch", "cause", "cell", "center", "century",
    "chair", "chance", "change", "charge", "chart", "check", "chief",
    "child", "choose", "circle", "city", "claim", "class", "clean", "clear",
    "climb", "clock", "close", "cloud", "coast", "coat", "cold", "collect",
    "colony", "color", "column", "come", "common", "company", "compare",
    "complete", "condition", "connect", "consider", "contain", "continue",
    "control", "cook", "cool", "copy", "corn", "corner", "correct", "cost",
    "cotton", "count", "country", "course", "cover", "cow", "crease",
    "create", "crop", "cross", "crowd", "cry", "current", "cut", "dance",
    "danger", "dark", "day", "dead", "deal", "dear", "death", "decide",
    "deep", "degree", "depend", "describe", "desert", "design", "detail",
    "develop", "differ", "direct", "discuss", "distant", "divide", "doctor",
    "dog", "dollar", "door", "double", "down", "draw", "dream", "dress",
    "drink", "drive", "drop", "dry", "duck", "during", "each", "ear",
    "early", "earth", "ease", "east", "eat", "edge", "effect", "egg",
    "eight", "either", "electric", "element", "else", "end", "enemy",
    "energy", "engine", "enough", "enter", "equal", "even", "evening",
    "event", "ever", "every", "exact", "example", "except", "excite",
    "exercise", "expect", "experience", "eye", "face", "fact", "fair",
    "fall", "family", "famous", "far", "farm", "fast", "fat", "father",
    "favor", "fear", "feed", "feel", "feet", "fell", "few", "field",
    "fig", "fight", "figure", "fill", "final", "find", "fine", "finger",
    "finish", "fire", "first", "fish", "fit", "five", "flat", "floor",
    "flow", "flower", "fly", "follow", "food", "foot", "force", "forest",
    "form", "forward", "found", "fraction", "free", "fresh", "friend",
    "front", "fruit", "full", "fun", "game", "garden", "gas", "gather",
    "gave", "general", "gentle", "get", "girl", "give", "glad", "glass",
    "gold", "good", "grand", "grass", "gray", "great", "green", "ground",
    "group", "grow", "guess", "guide", "gun", "hair", "half", "hand",
    "happen", "happy", "hard", "hat", "head", "hear", "heart", "heat",
    "heavy", "help", "here", "high", "hill", "history", "hold", "hole",
    "home", "hope", "horse", "hot", "hour", "house", "huge", "human",
    "hunt", "hurry", "ice", "idea", "inch", "include", "indicate",
    "industry", "insect", "instant", "iron", "island", "job", "join",
    "joy", "jump", "keep", "key", "kind", "king", "know", "lady", "lake",
    "land", "language", "large", "last", "late", "laugh", "law", "lay",
    "lead", "learn", "leave", "left", "leg", "length", "letter", "level",
    "lie", "life", "lift", "light", "like", "line", "liquid", "list",
    "listen", "little", "live", "locate", "log", "lone", "long", "look",
    "lost", "loud", "love", "low", "machine", "magnet", "main", "major",
    "make", "man", "many", "map", "mark", "market", "mass", "master",
    "match", "matter", "meat", "meet", "melody", "metal", "method",
    "middle", "might", "mile", "milk", "million", "mind", "mine", "minute",
    "miss", "modern", "moment", "money", "month", "moon", "more", "morning",
    "mother", "motion", "mount", "mountain", "mouth", "move", "music",
    "name", "nation", "natural", "nature", "near", "need", "neighbor",
    "never", "new", "next", "night", "nine", "noise", "noon", "north",
    "nose", "note", "nothing", "notice", "noun", "number", "ocean", "offer",
    "office", "often", "oil", "old", "once", "open", "opposite", "orange",
    "order", "organ", "other", "oxygen", "page", "paint", "pair", "paper",
    "parent", "part", "party", "pass", "past", "path", "pattern", "pay",
    "people", "perhaps", "period", "person", "picture", "piece", "pitch",
    "place", "plain", "plan", "plane", "planet", "plant", "play", "please",
    "plural", "poem", "point", "poor", "populate", "port", "pose",
    "position", "possible", "pound", "power", "practice", "prepare",
    "present", "press", "pretty", "print", "probable", "problem", "process",
    "produce", "product", "proper", "protect", "prove", "provide", "pull",
    "push", "quart", "question", "quick", "quiet", "quite", "quotient",
    "race", "radio", "rail", "rain", "raise", "range", "rather", "reach",
    "read", "ready", "real", "reason", "receive", "record", "red", "region",
    "remember", "repeat", "reply", "rest", "result", "rich", "ride", "right",
    "ring", "rise", "river", "road", "rock", "roll", "room", "root", "rope",
    "rose", "round", "row", "rub", "rule", "run", "safe", "sail", "salt",
    "sand", "save", "scale", "school", "science", "score", "sea", "search",
    "season", "seat", "second", "section", "seed", "seem", "segment",
    "select", "sense", "sentence", "separate", "serve", "settle", "seven",
    "shape", "share", "sharp", "sheet", "shell", "shine", "ship", "shoe",
    "shop", "shore", "short", "shoulder", "shout", "show", "side", "sight",
    "sign", "silent", "silver", "similar", "simple", "since", "sing",
    "single", "sister", "sit", "six", "size", "skill", "skin", "sky",
    "sleep", "slip", "slow", "small", "smell", "smile", "snow", "soft",
    "soil", "soldier", "solution", "solve", "song", "soon", "sound", "south",
    "space", "speak", "special", "speech", "speed", "spell", "spend",
    "spoke", "spot", "spread", "spring", "square", "stand", "star", "start",
    "state", "station", "stay", "stead", "steam", "steel", "step", "stick",
    "still", "stone", "stood", "stop", "store", "story", "straight",
    "strange", "stream", "street", "stretch", "string", "strong", "student",
    "study", "subject", "substance", "suffix", "sugar", "suggest", "suit",
    "summer", "sun", "supply", "support", "sure", "surface", "swim",
    "syllable", "symbol", "system", "table", "tail", "take", "talk", "tall",
    "teach", "team", "teeth", "tell", "temperature", "test", "thank",
    "thick", "thin", "thing", "third", "thought", "thousand", "three",
    "through", "throw", "tie", "time", "tiny", "tire", "together", "tone",
    "tool", "top", "total", "touch", "toward", "town", "track", "trade",
    "train", "travel", "tree", "triangle", "trip", "trouble", "truck",
    "true", "try", "tube", "turn", "twenty", "type", "under", "unit",
    "until", "usual", "valley", "value", "vary", "verb", "very", "view",
    "village", "visit", "voice", "vowel", "wait", "walk", "wall", "warm",
    "wash", "watch", "water", "wave", "wear", "weather", "week", "weight",
    "west", "wheel", "white", "whole", "wide", "wife", "wild", "win",
    "wind", "window", "wing", "winter", "wire", "wish", "woman", "wonder",
    "wood", "word", "work", "world", "write", "wrong", "yard", "year",
    "yellow", "young", "zero",
};

static kval
random_word(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    size_t count = sizeof words / sizeof words[0];

    (void)vm;
    (void)data;
    (void)args;
    (void)n;
    return kval_cstr(words[(size_t)(mod_random_unit() * (double)count)]);
}

/* ---- integer and number ---- */

/* toNumberOrNull, with null standing for "not given" (so the defaults
 * upper 1, lower 0 hold; the reference reads a missing argument as 0) */
static bool
arg_number(const kval *v, bool round, double *out)
{
    if (kval_is_null(v) || !op_to_number(v, out))
        return false;
    if (round)
        *out = mod_js_round(*out);
    return true;
}

/* the reference's fixLowerUpperArgs, then lodash's toFinite and swap */
static void
bounds(const kval *args, size_t n, bool round, double *lo, double *hi)
{
    double upper, lower, t;
    bool has_upper = arg_number(builtin_arg(args, n, 0), round, &upper);
    bool has_lower = arg_number(builtin_arg(args, n, 1), round, &lower);

    if (!has_upper)
        upper = has_lower ? 0 : 1;
    if (!has_lower)
        lower = 0;
    if (isinf(upper))
        upper = upper > 0 ? 1.7976931348623157e308 : -1.7976931348623157e308;
    if (isinf(lower))
        lower = lower > 0 ? 1.7976931348623157e308 : -1.7976931348623157e308;
    if (lower > upper) {
        t = lower;
        lower = upper;
        upper = t;
    }
    *lo = lower;
    *hi = upper;
}

static kval
random_integer(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    double lo, hi;

    (void)vm;
    (void)data;
    bounds(args, n, true, &lo, &hi);
    return kval_number(lo + floor(mod_random_unit() * (hi - lo + 1)));
}

static kval
random_number(struct krl_vm *vm, void *data, const kval *args, size_t n)
{
    char s[KVAL_NUM_BUFSIZE];
    double lo, hi, r, eps;

    (void)vm;
    (void)data;
    bounds(args, n, false, &lo, &hi);
    r = mod_random_unit();
    /* lodash widens the range by 1e-(digits of r) so HI can come out */
    eps = pow(10, -(double)(kval_num_format(r, s) - 1));
    return kval_number(fmin(lo + r * (hi - lo + eps), hi));
}

#define FN KV_FN_FUNCTION

const struct krl_module_entry mod_random_entries[] = {
    {"uuid", random_uuid, FN, {NULL}, NULL},
    {"word", random_word, FN, {NULL}, NULL},
    {"integer", random_integer, FN, {"upper", "lower"}, NULL},
    {"number", random_number, FN, {"upper", "lower"}, NULL},
    {NULL, NULL, 0, {NULL}, NULL},
};
