/* Google Gemini generateContent requests from OpenAI chat requests.
 *
 * POST {base_url}/v1beta/models/{model}:generateContent, or
 * :streamGenerateContent?alt=sse for streams. The request is built as a
 * jansson tree from the parsed OpenAI request (cx->chat->root) and dumped
 * into the caller's capped body buffer. docs/providers.md has the mapping
 * tables and the reasons behind every field that is refused or dropped.
 *
 * The same rule as anthropic.c: translate what Gemini has a faithful
 * equivalent for; drop what cannot change the answer; refuse the rest with
 * a 400 naming the parameter. Schemas are converted, never passed through
 * into one of Gemini's 400s (yr_gemini_schema).
 *
 * Memory: every json_t built here is released before a function returns;
 * the path lives in cx->pool. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/gemini.h"
#include "providers/translate.h"

#define GEM_MAX_SCHEMA_DEPTH 64
#define GEM_MAX_MEDIA_TYPE 32

static const char *vendor(const yr_call_ctx_t *cx)
{
    return yr_tr_vendor(cx, "google");
}

/* ---- model names and paths ------------------------------------------------------------- */

static const char *bare_model(const char *model)
{
    const char *slash = strrchr(model, '/');
    return slash ? slash + 1 : model;
}

yr_gemini_family_t yr_gemini_family(const char *model)
{
    const char *m = bare_model(model ? model : "");
    if (strncmp(m, "gemini-", 7) != 0)
        return YR_GEMINI_OTHER;
    m += 7;
    if (strncmp(m, "2.5", 3) == 0)
        return YR_GEMINI_2_5;
    if (m[0] >= '3' && m[0] <= '9' && (m[1] == '-' || m[1] == '.'))
        return YR_GEMINI_3; /* 3, 3.1, and the later families keep 3's controls */
    return YR_GEMINI_OTHER;
}

static bool unreserved(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

const char *yr_gemini_path(yr_pool_t *pool, const char *model, const char *method)
{
    bool prefixed = strncmp(model, "models/", 7) == 0 || strncmp(model, "tunedModels/", 12) == 0;
    size_t mlen = strlen(model), n = sizeof("/v1beta/models/") + 3 * mlen + strlen(method) + 2;
    char *p = yr_palloc(pool, n);
    if (p == NULL)
        return NULL;
    size_t off = (size_t)snprintf(p, n, "/v1beta/%s", prefixed ? "" : "models/");
    for (size_t i = 0; i < mlen; i++) {
        char c = model[i];
        if (unreserved(c) || (prefixed && c == '/'))
            p[off++] = c;
        else
            off += (size_t)snprintf(p + off, n - off, "%%%02X", (unsigned char)c);
    }
    snprintf(p + off, n - off, ":%s", method);
    return p;
}

/* ---- schemas ------------------------------------------------------------------------------- */

typedef struct {
    const json_t *root;
    char *why;
    size_t whylen;
    const char *stack[GEM_MAX_SCHEMA_DEPTH]; /* $refs being expanded (cycle check) */
    size_t nstack;
} schema_ctx_t;

static int schema_fail(schema_ctx_t *s, const char *what, const char *ref)
{
    snprintf(s->why, s->whylen, "%s%s%s", what, ref ? ref : "", ref ? "'" : "");
    return -EINVAL;
}

/* "#/$defs/Name" or "#/definitions/Name" (or "#") -> the schema in the root. */
static const json_t *resolve_ref(const schema_ctx_t *s, const char *ref)
{
    if (strncmp(ref, "#/$defs/", 8) == 0)
        return json_object_get(json_object_get(s->root, "$defs"), ref + 8);
    if (strncmp(ref, "#/definitions/", 14) == 0)
        return json_object_get(json_object_get(s->root, "definitions"), ref + 14);
    return strcmp(ref, "#") == 0 ? s->root : NULL;
}

static const char *upper_type(const char *t)
{
    static const char *const names[][2] = {
        {"string", "STRING"},   {"number", "NUMBER"}, {"integer", "INTEGER"},
        {"boolean", "BOOLEAN"}, {"array", "ARRAY"},   {"object", "OBJECT"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(t, names[i][0]) == 0)
            return names[i][1];
    return NULL;
}

static int convert_schema(schema_ctx_t *s, const json_t *in, size_t depth, json_t **out);

static bool is_type(const char *t, const char *want)
{
    return t != NULL && strcmp(t, want) == 0;
}

static int copy_plain(const json_t *in, json_t *o, const char *const *keys)
{
    for (size_t i = 0; keys[i] != NULL; i++) {
        json_t *v = json_object_get(in, keys[i]);
        if (v != NULL && !json_is_null(v) && json_object_set(o, keys[i], v) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* format: only what Gemini takes for the type (uri, email, uuid, ... are a
 * 400 there). */
static int copy_format(const json_t *in, const char *type, json_t *o)
{
    const char *f = json_string_value(json_object_get(in, "format"));
    if (f == NULL)
        return 0;
    bool ok = (is_type(type, "STRING") && (strcmp(f, "date-time") == 0 || strcmp(f, "enum") == 0)) ||
              (is_type(type, "NUMBER") && (strcmp(f, "float") == 0 || strcmp(f, "double") == 0)) ||
              (is_type(type, "INTEGER") && (strcmp(f, "int32") == 0 || strcmp(f, "int64") == 0));
    return ok ? yr_tr_set_new(o, "format", json_string(f)) : 0;
}

/* enum and const: string-only in Gemini's Schema. */
static int copy_enum(const json_t *in, json_t *o)
{
    json_t *vals = json_array();
    if (vals == NULL)
        return -ENOMEM;
    int rc = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(in, "enum"), i, v)
    {
        if (rc == 0 && json_is_string(v))
            rc = json_array_append(vals, v) == 0 ? 0 : -ENOMEM;
    }
    json_t *cst = json_object_get(in, "const");
    if (rc == 0 && json_is_string(cst))
        rc = json_array_append(vals, cst) == 0 ? 0 : -ENOMEM;
    if (rc == 0 && json_array_size(vals) > 0)
        rc = json_object_set(o, "enum", vals) == 0 ? 0 : -ENOMEM;
    json_decref(vals);
    return rc;
}

static int copy_properties(schema_ctx_t *s, const json_t *in, size_t depth, json_t *o)
{
    json_t *props = json_object_get(in, "properties");
    if (!json_is_object(props) || json_object_size(props) == 0)
        return 0;
    json_t *po = json_object(), *order = json_array(), *req = json_array();
    int rc = po && order && req ? 0 : -ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(props, k, v)
    {
        json_t *c = NULL;
        if (rc == 0)
            rc = convert_schema(s, v, depth + 1, &c);
        if (rc == 0)
            rc = yr_tr_set_new(po, k, c);
        if (rc == 0)
            rc = yr_tr_append_new(order, json_string(k));
    }
    /* required names a property Gemini knows, or it refuses the schema */
    size_t i;
    json_array_foreach(json_object_get(in, "required"), i, v)
    {
        if (rc == 0 && json_is_string(v) && json_object_get(props, json_string_value(v)) != NULL)
            rc = json_array_append(req, v) == 0 ? 0 : -ENOMEM;
    }
    if (rc == 0)
        rc = json_object_set(o, "properties", po) == 0 ? 0 : -ENOMEM;
    if (rc == 0 && json_array_size(req) > 0)
        rc = json_object_set(o, "required", req) == 0 ? 0 : -ENOMEM;
    if (rc == 0 && json_array_size(order) > 1) /* keep the client's key order */
        rc = json_object_set(o, "propertyOrdering", order) == 0 ? 0 : -ENOMEM;
    json_decref(po);
    json_decref(order);
    json_decref(req);
    return rc;
}

/* items (or a tuple's first member): Gemini needs one for every ARRAY; an
 * array of anything is asked for as an array of strings. */
static int copy_items(schema_ctx_t *s, const json_t *in, size_t depth, json_t *o)
{
    json_t *items = json_object_get(in, "items");
    if (json_is_array(items))
        items = json_array_get(items, 0);
    if (items == NULL)
        items = json_array_get(json_object_get(in, "prefixItems"), 0);
    json_t *c = NULL;
    int rc = items != NULL ? convert_schema(s, items, depth + 1, &c)
                           : ((c = json_pack("{s:s}", "type", "STRING")) ? 0 : -ENOMEM);
    return rc == 0 ? yr_tr_set_new(o, "items", c) : rc;
}

/* The keywords Gemini's Schema has for this type; each is refused on a
 * schema of another type ("field predicate failed"). */
static int copy_keywords(schema_ctx_t *s, const json_t *in, const char *type, size_t depth,
                         json_t *o)
{
    static const char *const common[] = {"title", "description", NULL};
    static const char *const strings[] = {"minLength", "maxLength", "pattern", NULL};
    static const char *const numbers[] = {"minimum", "maximum", NULL};
    static const char *const arrays[] = {"minItems", "maxItems", NULL};
    static const char *const objects[] = {"minProperties", "maxProperties", NULL};
    int rc = copy_plain(in, o, common);
    if (rc == 0)
        rc = copy_format(in, type, o);
    if (rc == 0 && is_type(type, "STRING")) {
        rc = copy_plain(in, o, strings);
        if (rc == 0)
            rc = copy_enum(in, o);
    } else if (rc == 0 && (is_type(type, "NUMBER") || is_type(type, "INTEGER"))) {
        rc = copy_plain(in, o, numbers);
    } else if (rc == 0 && is_type(type, "ARRAY")) {
        rc = copy_plain(in, o, arrays);
        if (rc == 0)
            rc = copy_items(s, in, depth, o);
    } else if (rc == 0 && is_type(type, "OBJECT")) {
        rc = copy_plain(in, o, objects);
        if (rc == 0)
            rc = copy_properties(s, in, depth, o);
    }
    return rc;
}

/* Gemini needs a type on every schema that is not an anyOf: the declared
 * one, else what the keywords say, else a string (Gemini has no "any"). */
static const char *infer_type(const json_t *in)
{
    if (json_is_object(json_object_get(in, "properties")))
        return "OBJECT";
    if (json_object_get(in, "items") != NULL || json_object_get(in, "prefixItems") != NULL)
        return "ARRAY";
    if (json_object_get(in, "minimum") != NULL || json_object_get(in, "maximum") != NULL)
        return "NUMBER";
    return "STRING";
}

/* The null-free members of anyOf/oneOf (or of a type array); *nullable when
 * a null one was there. New array. */
static json_t *non_null_members(const json_t *list, bool *nullable)
{
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        if (yr_tr_str_is(m, "null") || yr_tr_str_is(json_object_get(m, "type"), "null"))
            *nullable = true;
        else if (out != NULL && json_array_append(out, m) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* allOf: the members' keywords merged into one schema (properties and
 * required united); new object. */
static json_t *merge_all_of(const json_t *in)
{
    json_t *merged = json_deep_copy(in);
    if (merged == NULL)
        return NULL;
    json_t *all = json_incref(json_object_get(merged, "allOf"));
    json_object_del(merged, "allOf");
    size_t i;
    json_t *m;
    json_array_foreach(all, i, m)
    {
        const char *k;
        json_t *v;
        json_object_foreach(m, k, v)
        {
            json_t *have = json_object_get(merged, k);
            if (strcmp(k, "properties") == 0 && json_is_object(have))
                json_object_update(have, v);
            else if (strcmp(k, "required") == 0 && json_is_array(have))
                json_array_extend(have, v);
            else if (have == NULL)
                json_object_set(merged, k, v);
        }
    }
    json_decref(all);
    return merged;
}

/* {"anyOf":[each member converted]} with this level's title, description
 * and nullability. */
static int convert_union(schema_ctx_t *s, const json_t *in, const json_t *members, bool nullable,
                         size_t depth, json_t **out)
{
    json_t *o = json_object(), *list = json_array();
    int rc = o && list ? 0 : -ENOMEM;
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m)
    {
        json_t *c = NULL;
        if (rc == 0)
            rc = convert_schema(s, m, depth + 1, &c);
        if (rc == 0)
            rc = yr_tr_append_new(list, c);
    }
    static const char *const common[] = {"title", "description", NULL};
    if (rc == 0)
        rc = json_object_set(o, "anyOf", list) == 0 ? 0 : -ENOMEM;
    if (rc == 0)
        rc = copy_plain(in, o, common);
    if (rc == 0 && nullable)
        rc = yr_tr_set_new(o, "nullable", json_true());
    json_decref(list);
    if (rc < 0) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* A type array with several real types: one branch per type, each with the
 * keywords of its type ({"type":["string","array"],"items":…}). */
static int split_types(schema_ctx_t *s, const json_t *in, const json_t *types, bool nullable,
                       size_t depth, json_t **out)
{
    json_t *branches = json_array();
    int rc = branches ? 0 : -ENOMEM;
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
    {
        json_t *b = rc == 0 ? json_deep_copy(in) : NULL;
        if (rc == 0 && (b == NULL || json_object_set(b, "type", t) < 0))
            rc = -ENOMEM;
        if (b != NULL) {
            json_object_del(b, "description");
            json_object_del(b, "title");
        }
        if (rc == 0)
            rc = yr_tr_append_new(branches, b);
        else
            json_decref(b);
    }
    if (rc == 0)
        rc = convert_union(s, in, branches, nullable, depth, out);
    json_decref(branches);
    return rc;
}

static int convert_schema(schema_ctx_t *s, const json_t *in, size_t depth, json_t **out)
{
    *out = NULL;
    if (depth > GEM_MAX_SCHEMA_DEPTH)
        return schema_fail(s, "the schema nests deeper than 64 levels", NULL);
    if (!json_is_object(in)) { /* true: anything, asked for as a string */
        *out = json_pack("{s:s}", "type", "STRING");
        return *out ? 0 : -ENOMEM;
    }
    const char *ref = json_string_value(json_object_get(in, "$ref"));
    if (ref != NULL) {
        for (size_t i = 0; i < s->nstack; i++)
            if (strcmp(s->stack[i], ref) == 0)
                return schema_fail(s,
                                   "recursive schemas cannot be expressed in Gemini's schema; "
                                   "it refers to itself through '",
                                   ref);
        const json_t *target = resolve_ref(s, ref);
        if (target == NULL)
            return schema_fail(s, "a $ref does not name one of the schema's $defs: '", ref);
        s->stack[s->nstack++] = ref;
        int rc = convert_schema(s, target, depth + 1, out);
        s->nstack--;
        json_t *desc = json_object_get(in, "description");
        if (rc == 0 && json_is_string(desc) && json_object_set(*out, "description", desc) < 0)
            rc = -ENOMEM;
        return rc;
    }
    if (json_is_array(json_object_get(in, "allOf"))) {
        json_t *merged = merge_all_of(in);
        if (merged == NULL)
            return -ENOMEM;
        int rc = convert_schema(s, merged, depth + 1, out);
        json_decref(merged);
        return rc;
    }
    bool nullable = json_is_true(json_object_get(in, "nullable"));
    const json_t *tv = json_object_get(in, "type");
    const char *type = NULL;
    if (json_is_array(tv)) { /* ["string","null"] */
        json_t *types = non_null_members(tv, &nullable);
        int rc = types ? 0 : -ENOMEM;
        if (rc == 0 && json_array_size(types) > 1)
            rc = split_types(s, in, types, nullable, depth, out);
        else if (rc == 0 && json_array_size(types) == 1)
            type = upper_type(json_string_value(json_array_get(types, 0)));
        json_decref(types);
        if (rc < 0 || *out != NULL)
            return rc;
    } else if (json_is_string(tv)) {
        type = upper_type(json_string_value(tv));
        nullable = nullable || strcmp(json_string_value(tv), "null") == 0;
    }
    const json_t *alts = json_object_get(in, "anyOf");
    if (alts == NULL)
        alts = json_object_get(in, "oneOf"); /* Gemini has anyOf only */
    if (type == NULL && json_is_array(alts)) {
        json_t *members = non_null_members(alts, &nullable);
        if (members == NULL)
            return -ENOMEM;
        int rc = 0;
        if (json_array_size(members) > 1) {
            rc = convert_union(s, in, members, nullable, depth, out);
        } else if (json_array_size(members) == 1) { /* X or null: X, nullable */
            rc = convert_schema(s, json_array_get(members, 0), depth + 1, out);
            static const char *const common[] = {"title", "description", NULL};
            if (rc == 0)
                rc = copy_plain(in, *out, common);
            if (rc == 0 && nullable)
                rc = yr_tr_set_new(*out, "nullable", json_true());
        }
        json_decref(members);
        if (rc < 0 || *out != NULL)
            return rc;
    }
    if (type == NULL)
        type = infer_type(in);
    json_t *o = json_pack("{s:s}", "type", type);
    int rc = o ? copy_keywords(s, in, type, depth, o) : -ENOMEM;
    if (rc == 0 && nullable)
        rc = yr_tr_set_new(o, "nullable", json_true());
    if (rc < 0) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return 0;
}

int yr_gemini_schema(const json_t *schema, json_t **out, char *why, size_t whylen)
{
    schema_ctx_t s = {.root = schema, .why = why, .whylen = whylen};
    return convert_schema(&s, schema, 0, out);
}

/* responseJsonSchema: Gemini's documented JSON Schema keywords, recursively. */
static const char *const json_schema_keys[] = {
    "$id",      "$defs",    "$ref",        "$anchor",    "type",        "format",
    "title",    "description", "enum",     "items",      "prefixItems", "minItems",
    "maxItems", "minimum",  "maximum",     "anyOf",      "oneOf",       "properties",
    "additionalProperties", "required",    "propertyOrdering", NULL};

static bool json_schema_key(const char *k)
{
    for (size_t i = 0; json_schema_keys[i] != NULL; i++)
        if (strcmp(k, json_schema_keys[i]) == 0)
            return true;
    return false;
}

static json_t *filter_json_schema(const json_t *in, size_t depth)
{
    if (!json_is_object(in) || depth > GEM_MAX_SCHEMA_DEPTH)
        return json_incref((json_t *)in);
    json_t *o = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        if (o == NULL || !json_schema_key(k))
            continue;
        json_t *c;
        if (strcmp(k, "properties") == 0 || strcmp(k, "$defs") == 0) {
            c = json_object();
            const char *pk;
            json_t *pv;
            json_object_foreach(v, pk, pv)
            {
                if (c != NULL && yr_tr_set_new(c, pk, filter_json_schema(pv, depth + 1)) < 0) {
                    json_decref(c);
                    c = NULL;
                }
            }
        } else if (strcmp(k, "anyOf") == 0 || strcmp(k, "oneOf") == 0 ||
                   strcmp(k, "prefixItems") == 0) {
            c = json_array();
            size_t i;
            json_t *m;
            json_array_foreach(v, i, m)
            {
                if (c != NULL && yr_tr_append_new(c, filter_json_schema(m, depth + 1)) < 0) {
                    json_decref(c);
                    c = NULL;
                }
            }
        } else if (strcmp(k, "items") == 0 || strcmp(k, "additionalProperties") == 0) {
            c = filter_json_schema(v, depth + 1);
        } else {
            c = json_incref(v);
        }
        if (c == NULL || json_object_set_new(o, k, c) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

int yr_gemini_json_schema(const json_t *schema, json_t **out)
{
    *out = filter_json_schema(schema, 0);
    return *out ? 0 : -ENOMEM;
}

/* ---- messages -> contents ------------------------------------------------------------------- */

typedef struct {
    yr_call_ctx_t *cx;
    const json_t *messages;
    json_t *system;   /* parts of systemInstruction */
    json_t *contents; /* [{role, parts}] */
    json_t *cur;      /* parts of the last content */
    const char *cur_role;
    size_t turn_start; /* messages from here on are the current turn */
} conv_t;

/* Appends parts (consumed) as a content of role, merged into the previous
 * content when it has the same role: Gemini wants alternating turns. */
static int push_parts(conv_t *c, const char *role, json_t *parts)
{
    return yr_tr_push_turn(c->contents, &c->cur, &c->cur_role, role, "parts", parts);
}

static const char *const gem_image_types[] = {"image/png",  "image/jpeg", "image/webp",
                                              "image/heic", "image/heif", NULL};

/* image_url -> {"inlineData":{"mimeType","data"}}. Remote URLs were fetched
 * and inlined by the gateway before (the dialect's inline_images). */
static int image_part(conv_t *c, const json_t *part, size_t mi, size_t pi, json_t **out)
{
    yr_call_ctx_t *cx = c->cx;
    char param[96];
    snprintf(param, sizeof(param), "messages[%zu].content[%zu].image_url.url", mi, pi);
    json_t *iu = json_object_get(part, "image_url");
    json_t *urlv = json_is_object(iu) ? json_object_get(iu, "url") : iu;
    if (!json_is_string(urlv))
        return yr_tr_reject(cx, param, "%s must be a string", param);
    yr_str_t url = yr_tr_jslice(urlv);
    if (!yr_tr_has_prefix_ci(url.ptr, url.len, "data:"))
        return yr_tr_reject(cx, param,
                            "%s must be a data: URL for vendor '%s' (remote images are fetched "
                            "by the gateway first; this one was not)",
                            param, vendor(cx));
    char media[GEM_MAX_MEDIA_TYPE];
    yr_str_t data;
    int rc = yr_tr_data_url(cx, url, param, gem_image_types,
                            "image/png, image/jpeg, image/webp, image/heic and image/heif", media,
                            sizeof(media), &data);
    if (rc < 0)
        return rc;
    *out = json_pack("{s:{s:s, s:s%}}", "inlineData", "mimeType", media, "data", data.ptr,
                     data.len);
    return *out ? 0 : -ENOMEM;
}

static json_t *text_part(const char *s, size_t n)
{
    return json_pack("{s:s%}", "text", s, n);
}

/* A string or an array of parts -> a new array of Gemini parts. */
static int convert_content(conv_t *c, const json_t *content, size_t mi, bool images, json_t **out)
{
    json_t *parts = json_array();
    if (parts == NULL)
        return -ENOMEM;
    int rc = 0;
    char param[96];
    if (json_is_string(content)) {
        if (json_string_length(content) > 0)
            rc = yr_tr_append_new(parts, text_part(json_string_value(content),
                                                   json_string_length(content)));
    } else if (json_is_array(content)) {
        size_t pi;
        json_t *part;
        json_array_foreach(content, pi, part)
        {
            snprintf(param, sizeof(param), "messages[%zu].content[%zu]", mi, pi);
            const char *type = json_string_value(json_object_get(part, "type"));
            json_t *p = NULL;
            if (type == NULL) {
                rc = yr_tr_reject(c->cx, param, "%s.type must be a string", param);
            } else if (strcmp(type, "text") == 0 || strcmp(type, "refusal") == 0) {
                json_t *t = json_object_get(part, type);
                if (!json_is_string(t))
                    rc = yr_tr_reject(c->cx, param, "%s.%s must be a string", param, type);
                else if (json_string_length(t) > 0) /* Gemini refuses empty text parts */
                    rc = yr_tr_append_new(parts,
                                          text_part(json_string_value(t), json_string_length(t)));
            } else if (strcmp(type, "image_url") == 0 && images) {
                rc = image_part(c, part, mi, pi, &p);
                if (rc == 0)
                    rc = yr_tr_append_new(parts, p);
            } else {
                rc = yr_tr_reject(c->cx, param,
                                  "content parts of type '%.40s' are not supported here by "
                                  "vendor '%s'",
                                  type, vendor(c->cx));
            }
            if (rc < 0)
                break;
        }
    } else if (content != NULL && !json_is_null(content)) {
        snprintf(param, sizeof(param), "messages[%zu].content", mi);
        rc = yr_tr_reject(c->cx, param, "%s must be a string or an array", param);
    }
    if (rc < 0) {
        json_decref(parts);
        return rc;
    }
    *out = parts;
    return 0;
}

/* A call id Gemini gave (functionCall.id) is echoed; the ones the gateway
 * made up for calls without one ("call_...", oai_enc.c) and other vendors'
 * ids are not Gemini's to match, so they stay on the OpenAI side. */
static bool gemini_call_id(const char *id)
{
    return id != NULL && id[0] != '\0' && strncmp(id, "call_", 5) != 0 &&
           strncmp(id, "toolu_", 6) != 0 && strstr(id, "__thought__") == NULL;
}

/* The thought signature a client kept for a call: where we put it
 * (extra_content.google.thought_signature, as Google's own OpenAI endpoint
 * does), and the other places clients are known to keep it. */
static yr_str_t call_signature(const json_t *tc)
{
    const json_t *g = json_object_get(json_object_get(tc, "extra_content"), "google");
    const json_t *fn = json_object_get(tc, "function");
    const json_t *cands[] = {
        json_object_get(g, "thought_signature"), json_object_get(g, "thoughtSignature"),
        json_object_get(tc, "thought_signature"), json_object_get(fn, "thought_signature"),
    };
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
        if (json_is_string(cands[i]) && json_string_length(cands[i]) > 0)
            return yr_tr_jslice(cands[i]);
    /* LiteLLM's form: the signature appended to the id. */
    const char *id = json_string_value(json_object_get(tc, "id"));
    const char *sep = id ? strstr(id, "__thought__") : NULL;
    if (sep != NULL && sep[11] != '\0')
        return yr_str(sep + 11);
    return YR_STR_NULL;
}

static int convert_tool_call(conv_t *c, const json_t *tc, size_t mi, size_t k, bool first,
                             json_t *parts)
{
    yr_call_ctx_t *cx = c->cx;
    char param[96];
    snprintf(param, sizeof(param), "messages[%zu].tool_calls[%zu]", mi, k);
    json_t *fn = json_object_get(tc, "function");
    json_t *type = json_object_get(tc, "type");
    if (!json_is_object(tc) || !json_is_object(fn))
        return yr_tr_reject(cx, param, "%s must be an object with a 'function'", param);
    if (type != NULL && !yr_tr_str_is(type, "function"))
        return yr_tr_reject(cx, param, "%s.type must be 'function'", param);
    json_t *name = json_object_get(fn, "name");
    if (!json_is_string(name) || json_string_length(name) == 0)
        return yr_tr_reject(cx, param, "%s.function.name must be a non-empty string", param);
    char aparam[128];
    snprintf(aparam, sizeof(aparam), "%s.function.arguments", param);
    json_t *args = NULL;
    int rc = yr_tr_parse_arguments(cx, json_object_get(fn, "arguments"), aparam, &args);
    if (rc < 0)
        return rc;
    json_t *call = json_object();
    rc = call ? yr_tr_set_new(call, "name", json_incref(name)) : -ENOMEM;
    if (rc == 0)
        rc = yr_tr_set_new(call, "args", args);
    else
        json_decref(args);
    const char *id = json_string_value(json_object_get(tc, "id"));
    if (rc == 0 && gemini_call_id(id))
        rc = yr_tr_set_new(call, "id", json_string(id));
    json_t *part = json_object();
    if (rc == 0 && part != NULL)
        rc = yr_tr_set_new(part, "functionCall", call); /* releases call either way */
    else
        json_decref(call);
    if (rc == 0 && part == NULL)
        rc = -ENOMEM;
    yr_str_t sig = call_signature(tc);
    /* The first call of a step in the current turn must carry a signature
     * (Gemini 3 refuses the request otherwise): the documented placeholder
     * stands in for one the client could not keep. */
    if (sig.len == 0 && first && mi >= c->turn_start)
        sig = YR_STR(YR_GEMINI_DUMMY_SIGNATURE);
    if (rc == 0 && sig.len > 0)
        rc = yr_tr_set_new(part, "thoughtSignature", json_stringn(sig.ptr, sig.len));
    if (rc == 0)
        return yr_tr_append_new(parts, part);
    json_decref(part);
    return rc;
}

static int convert_assistant(conv_t *c, const json_t *msg, size_t mi)
{
    json_t *parts;
    int rc = convert_content(c, json_object_get(msg, "content"), mi, false, &parts);
    if (rc < 0)
        return rc;
    json_t *calls = json_object_get(msg, "tool_calls");
    if (calls != NULL && !json_is_null(calls) && !json_is_array(calls)) {
        json_decref(parts);
        char param[48];
        snprintf(param, sizeof(param), "messages[%zu].tool_calls", mi);
        return yr_tr_reject(c->cx, param, "%s must be an array", param);
    }
    size_t k;
    json_t *tc;
    json_array_foreach(calls, k, tc)
    {
        if ((rc = convert_tool_call(c, tc, mi, k, k == 0, parts)) < 0) {
            json_decref(parts);
            return rc;
        }
    }
    return push_parts(c, "model", parts); /* an empty assistant turn is dropped */
}

/* The tool's answer as functionResponse.response, which must be an object:
 * a JSON object text is that object, anything else {"result": text}. */
static json_t *response_object(const json_t *content)
{
    if (json_is_string(content)) {
        yr_str_t s = yr_tr_jslice(content);
        json_t *v = s.len > 0 && yr_str_trim(s).ptr[0] == '{' ? json_loadb(s.ptr, s.len, 0, NULL)
                                                              : NULL;
        if (json_is_object(v))
            return v;
        json_decref(v);
        return json_pack("{s:s%}", "result", s.ptr, s.len);
    }
    yr_buf_t text; /* text parts joined; bounded by the request body they come from */
    yr_buf_init(&text, (size_t)1 << 30);
    size_t i;
    json_t *p;
    json_array_foreach(content, i, p)
    {
        json_t *t = json_object_get(p, "text");
        if (json_is_string(t)) {
            if (text.len > 0 && yr_buf_append(&text, "\n", 1) < 0)
                break;
            if (yr_buf_append(&text, json_string_value(t), json_string_length(t)) < 0)
                break;
        }
    }
    json_t *r = json_pack("{s:s%}", "result", text.data ? text.data : "", text.len);
    yr_buf_free(&text);
    return r;
}

/* role "tool" -> a functionResponse part in a user turn; consecutive tool
 * messages (the answers of one step) share that turn. */
static int convert_tool_result(conv_t *c, const json_t *msg, size_t mi)
{
    yr_call_ctx_t *cx = c->cx;
    char param[64];
    snprintf(param, sizeof(param), "messages[%zu].tool_call_id", mi);
    const char *id = json_string_value(json_object_get(msg, "tool_call_id"));
    if (id == NULL || id[0] == '\0')
        return yr_tr_reject(cx, param, "%s must be a non-empty string", param);
    const json_t *call = yr_tr_find_tool_call(c->messages, mi, id);
    const char *name = json_string_value(json_object_get(json_object_get(call, "function"), "name"));
    if (name == NULL)
        return yr_tr_reject(cx, param,
                            "%s '%.64s' does not answer a tool call of an earlier assistant "
                            "message (vendor '%s' needs the function's name)",
                            param, id, vendor(cx));
    json_t *content = json_object_get(msg, "content");
    json_t *fr = json_object();
    int rc = fr ? yr_tr_set_new(fr, "name", json_string(name)) : -ENOMEM;
    if (rc == 0)
        rc = yr_tr_set_new(fr, "response", response_object(content));
    if (rc == 0 && gemini_call_id(id))
        rc = yr_tr_set_new(fr, "id", json_string(id));
    json_t *part = json_object(), *parts = json_array();
    if (rc == 0 && part != NULL && parts != NULL)
        rc = yr_tr_set_new(part, "functionResponse", fr); /* releases fr either way */
    else
        json_decref(fr);
    if (rc == 0 && (part == NULL || parts == NULL))
        rc = -ENOMEM;
    if (rc == 0) {
        rc = yr_tr_append_new(parts, part);
        part = NULL;
    }
    json_decref(part);
    if (rc < 0) {
        json_decref(parts);
        return rc;
    }
    return push_parts(c, "user", parts);
}

static int convert_user(conv_t *c, const json_t *msg, size_t mi)
{
    json_t *parts;
    int rc = convert_content(c, json_object_get(msg, "content"), mi, true, &parts);
    if (rc < 0)
        return rc;
    if (json_array_size(parts) == 0) {
        json_decref(parts);
        char param[48];
        snprintf(param, sizeof(param), "messages[%zu].content", mi);
        return yr_tr_reject(c->cx, param,
                            "%s is empty; vendor '%s' does not accept empty user messages", param,
                            vendor(c->cx));
    }
    return push_parts(c, "user", parts);
}

static int convert_system(conv_t *c, const json_t *msg, size_t mi)
{
    json_t *parts;
    int rc = convert_content(c, json_object_get(msg, "content"), mi, false, &parts);
    if (rc < 0)
        return rc;
    rc = json_array_extend(c->system, parts) == 0 ? 0 : -ENOMEM;
    json_decref(parts);
    return rc;
}

static int convert_messages(yr_call_ctx_t *cx, const json_t *root, json_t *req)
{
    const json_t *msgs = json_object_get(root, "messages");
    conv_t c = {.cx = cx, .messages = msgs, .system = json_array(), .contents = json_array()};
    int rc = c.system && c.contents ? 0 : -ENOMEM;
    /* The current turn starts after the last message of the user (tool
     * answers are part of the turn, as in Gemini's own definition). */
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        if (yr_tr_str_is(json_object_get(m, "role"), "user"))
            c.turn_start = i + 1;
    }
    json_array_foreach(msgs, i, m)
    {
        if (rc < 0)
            break;
        const char *role = json_string_value(json_object_get(m, "role"));
        char param[48];
        snprintf(param, sizeof(param), "messages[%zu].role", i);
        if (role == NULL)
            rc = yr_tr_reject(cx, param, "%s must be a string", param);
        else if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
            rc = convert_system(&c, m, i);
        else if (strcmp(role, "user") == 0)
            rc = convert_user(&c, m, i);
        else if (strcmp(role, "assistant") == 0)
            rc = convert_assistant(&c, m, i);
        else if (strcmp(role, "tool") == 0)
            rc = convert_tool_result(&c, m, i);
        else
            rc = yr_tr_reject(cx, param,
                              "%s '%.40s' is not supported by vendor '%s'; use 'tool' messages "
                              "and 'tools' instead of the legacy function calling",
                              param, role, vendor(cx));
    }
    if (rc == 0 && json_array_size(c.contents) == 0)
        rc = yr_tr_reject(cx, "messages",
                          "'messages' needs at least one user or assistant message for vendor "
                          "'%s' (system messages alone are not a conversation)",
                          vendor(cx));
    if (rc == 0 && json_array_size(c.system) > 0)
        rc = yr_tr_set_new(req, "systemInstruction", json_pack("{s:O}", "parts", c.system));
    if (rc == 0)
        rc = json_object_set(req, "contents", c.contents) == 0 ? 0 : -ENOMEM;
    json_decref(c.system);
    json_decref(c.contents);
    return rc;
}

/* ---- parameters ---------------------------------------------------------------------------- */

static bool present(const json_t *v)
{
    return v != NULL && !json_is_null(v);
}

/* What Gemini has no equivalent for (translate.c); it has the penalties. */
static int check_unsupported(yr_call_ctx_t *cx, const json_t *root)
{
    return yr_tr_check_unsupported(cx, root, true);
}

static int put_number(json_t *gc, const char *key, const json_t *v)
{
    return json_is_number(v) ? (json_object_set(gc, key, (json_t *)v) == 0 ? 0 : -ENOMEM) : 0;
}

static int put_sampling(yr_call_ctx_t *cx, const json_t *root, json_t *gc)
{
    int rc = put_number(gc, "temperature", json_object_get(root, "temperature"));
    if (rc == 0)
        rc = put_number(gc, "topP", json_object_get(root, "top_p"));
    if (rc == 0)
        rc = put_number(gc, "presencePenalty", json_object_get(root, "presence_penalty"));
    if (rc == 0)
        rc = put_number(gc, "frequencyPenalty", json_object_get(root, "frequency_penalty"));
    json_t *seed = json_object_get(root, "seed");
    if (rc == 0 && json_is_integer(seed))
        rc = json_object_set(gc, "seed", seed) == 0 ? 0 : -ENOMEM;
    int64_t max = 0;
    json_t *stop = NULL;
    if (rc == 0)
        rc = yr_tr_max_tokens(cx, root, &max);
    if (rc == 0 && max > 0)
        rc = yr_tr_set_new(gc, "maxOutputTokens", json_integer(max));
    if (rc == 0)
        rc = yr_tr_stop(cx, root, &stop);
    if (rc == 0 && stop != NULL)
        rc = yr_tr_set_new(gc, "stopSequences", stop);
    return rc;
}

/* reasoning_effort -> thinkingConfig: a token budget on 2.5, a level on 3
 * (never both: Gemini refuses that). Other families have no control. */
static int put_thinking(yr_call_ctx_t *cx, const json_t *root, json_t *gc)
{
    json_t *re = json_object_get(root, "reasoning_effort");
    if (!present(re))
        return 0;
    const char *e = json_string_value(re);
    static const char *const efforts[] = {"none", "minimal", "low", "medium", "high", NULL};
    size_t k = 0;
    while (e != NULL && efforts[k] != NULL && strcmp(e, efforts[k]) != 0)
        k++;
    if (e == NULL || efforts[k] == NULL)
        return yr_tr_reject(cx, "reasoning_effort",
                            "'reasoning_effort' must be one of none, minimal, low, medium, high");
    const char *model = cx->route->model;
    bool pro = strstr(bare_model(model), "-pro") != NULL;
    json_t *tc = NULL;
    switch (yr_gemini_family(model)) {
    case YR_GEMINI_2_5: {
        /* 2.5 Pro cannot switch thinking off: 128 is its least budget. */
        static const int budgets[] = {0, 512, 1024, 8192, 24576};
        int b = budgets[k];
        if (pro && b < 128)
            b = 128;
        tc = json_pack("{s:i, s:b}", "thinkingBudget", b, "includeThoughts", k > 0);
        break;
    }
    case YR_GEMINI_3: {
        /* Pro has low and high; Flash minimal, low, medium and high. */
        static const char *const flash[] = {"minimal", "minimal", "low", "medium", "high"};
        static const char *const prolv[] = {"low", "low", "low", "high", "high"};
        tc = json_pack("{s:s, s:b}", "thinkingLevel", pro ? prolv[k] : flash[k],
                       "includeThoughts", k > 0);
        break;
    }
    default: return 0; /* no thinking controls: nothing to honour */
    }
    return yr_tr_set_new(gc, "thinkingConfig", tc);
}

static int put_response_format(yr_call_ctx_t *cx, const json_t *root, json_t *gc)
{
    json_t *rf = json_object_get(root, "response_format");
    if (!present(rf))
        return 0;
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (type == NULL)
        return yr_tr_reject(cx, "response_format", "'response_format.type' must be a string");
    if (strcmp(type, "text") == 0)
        return 0;
    if (strcmp(type, "json_object") != 0 && strcmp(type, "json_schema") != 0)
        return yr_tr_reject(cx, "response_format",
                            "'response_format.type' must be text, json_object or json_schema");
    yr_gemini_family_t fam = yr_gemini_family(cx->route->model);
    if (json_array_size(json_object_get(root, "tools")) > 0 && fam != YR_GEMINI_3)
        return yr_tr_reject(cx, "response_format",
                            "'response_format' cannot be combined with 'tools' for vendor '%s' "
                            "on model '%s' (Gemini before 3 has no JSON output with function "
                            "calling)",
                            vendor(cx), cx->route->model);
    int rc = yr_tr_set_new(gc, "responseMimeType", json_string("application/json"));
    if (rc < 0 || strcmp(type, "json_object") == 0)
        return rc;
    json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    if (!json_is_object(schema))
        return yr_tr_reject(cx, "response_format",
                            "'response_format.json_schema.schema' must be an object");
    json_t *s = NULL;
    if (fam != YR_GEMINI_OTHER) {
        rc = yr_gemini_json_schema(schema, &s);
        return rc == 0 ? yr_tr_set_new(gc, "responseJsonSchema", s) : rc;
    }
    char why[256];
    rc = yr_gemini_schema(schema, &s, why, sizeof(why));
    if (rc == -EINVAL)
        return yr_tr_reject(cx, "response_format", "'response_format.json_schema.schema': %s",
                            why);
    return rc == 0 ? yr_tr_set_new(gc, "responseSchema", s) : rc;
}

static int put_generation_config(yr_call_ctx_t *cx, const json_t *root, json_t *req)
{
    json_t *gc = json_object();
    if (gc == NULL)
        return -ENOMEM;
    int rc = put_sampling(cx, root, gc);
    if (rc == 0)
        rc = put_thinking(cx, root, gc);
    if (rc == 0)
        rc = put_response_format(cx, root, gc);
    if (rc == 0 && json_object_size(gc) > 0)
        return yr_tr_set_new(req, "generationConfig", gc);
    json_decref(gc);
    return rc;
}

/* ---- tools ----------------------------------------------------------------------------------- */

/* Gemini's rule for function names (OpenAI's also allows a leading digit
 * or '-', and no '.' or ':'). */
static bool function_name_ok(yr_str_t n)
{
    if (n.len == 0 || n.len > 64)
        return false;
    char c0 = n.ptr[0];
    if (!((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || c0 == '_'))
        return false;
    for (size_t i = 1; i < n.len; i++) {
        char c = n.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

static int convert_tools(yr_call_ctx_t *cx, const json_t *tools, json_t *req)
{
    json_t *decls = json_array();
    if (decls == NULL)
        return -ENOMEM;
    int rc = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        char param[48];
        snprintf(param, sizeof(param), "tools[%zu]", i);
        json_t *fn = json_object_get(t, "function");
        json_t *type = json_object_get(t, "type");
        json_t *name = json_object_get(fn, "name");
        if (!json_is_object(t) || (type != NULL && !yr_tr_str_is(type, "function"))) {
            rc = yr_tr_reject(cx, param,
                              "%s: only tools of type 'function' are supported by vendor '%s'",
                              param, vendor(cx));
            break;
        }
        if (!json_is_object(fn) || !json_is_string(name) || json_string_length(name) == 0) {
            rc = yr_tr_reject(cx, param, "%s.function.name must be a non-empty string", param);
            break;
        }
        if (!function_name_ok(yr_tr_jslice(name))) {
            rc = yr_tr_reject(cx, param,
                              "%s.function.name '%.64s' is not a valid function name for vendor "
                              "'%s' (it must start with a letter or '_' and hold at most 64 of "
                              "a-z, A-Z, 0-9, '_', '.', ':' and '-')",
                              param, json_string_value(name), vendor(cx));
            break;
        }
        json_t *d = json_object();
        rc = d ? yr_tr_set_new(d, "name", json_incref(name)) : -ENOMEM;
        json_t *desc = json_object_get(fn, "description");
        if (rc == 0 && json_is_string(desc))
            rc = yr_tr_set_new(d, "description", json_incref(desc));
        json_t *params = json_object_get(fn, "parameters");
        /* A function without parameters has none in Gemini (an OBJECT
         * without properties is refused there). */
        if (rc == 0 && json_is_object(params) &&
            (json_object_size(json_object_get(params, "properties")) > 0 ||
             json_object_get(params, "$ref") || json_object_get(params, "anyOf") ||
             json_object_get(params, "allOf"))) {
            json_t *s = NULL;
            char why[256];
            rc = yr_gemini_schema(params, &s, why, sizeof(why));
            if (rc == -EINVAL) {
                char p2[80];
                snprintf(p2, sizeof(p2), "%s.function.parameters", param);
                rc = yr_tr_reject(cx, p2, "%s: %s", p2, why);
            }
            if (rc == 0)
                rc = yr_tr_set_new(d, "parameters", s);
        }
        if (rc == 0)
            rc = yr_tr_append_new(decls, d);
        else
            json_decref(d);
        if (rc < 0)
            break;
    }
    if (rc == 0)
        rc = yr_tr_set_new(req, "tools", json_pack("[{s:O}]", "functionDeclarations", decls));
    json_decref(decls);
    return rc;
}

/* tool_choice -> toolConfig.functionCallingConfig. */
static int convert_tool_choice(yr_call_ctx_t *cx, const json_t *root, json_t *req)
{
    json_t *tc = json_object_get(root, "tool_choice");
    if (!present(tc))
        return 0;
    const char *mode;
    json_t *name = NULL;
    if (yr_tr_str_is(tc, "auto")) {
        mode = "AUTO";
    } else if (yr_tr_str_is(tc, "none")) {
        mode = "NONE";
    } else if (yr_tr_str_is(tc, "required")) {
        mode = "ANY";
    } else if (json_is_object(tc)) {
        name = json_object_get(json_object_get(tc, "function"), "name");
        if (!json_is_string(name))
            return yr_tr_reject(cx, "tool_choice", "'tool_choice.function.name' must be a string");
        mode = "ANY";
    } else {
        return yr_tr_reject(cx, "tool_choice",
                            "'tool_choice' must be none, auto, required or a "
                            "{\"type\":\"function\",...} object");
    }
    json_t *fcc = json_pack("{s:s}", "mode", mode);
    int rc = fcc ? 0 : -ENOMEM;
    if (rc == 0 && name != NULL)
        rc = yr_tr_set_new(fcc, "allowedFunctionNames", json_pack("[O]", name));
    if (rc == 0)
        return yr_tr_set_new(req, "toolConfig", json_pack("{s:o}", "functionCallingConfig", fcc));
    json_decref(fcc);
    return rc;
}

static int put_tools(yr_call_ctx_t *cx, const json_t *root, json_t *req)
{
    json_t *tools = json_object_get(root, "tools");
    if (present(tools) && !json_is_array(tools))
        return yr_tr_reject(cx, "tools", "'tools' must be an array");
    if (json_array_size(tools) > 0) {
        int rc = convert_tools(cx, tools, req);
        return rc == 0 ? convert_tool_choice(cx, root, req) : rc;
    }
    json_t *tc = json_object_get(root, "tool_choice");
    if (present(tc) && !yr_tr_str_is(tc, "none") && !yr_tr_str_is(tc, "auto"))
        return yr_tr_reject(cx, "tool_choice", "'tool_choice' requires 'tools'");
    return 0;
}

/* ---- build ----------------------------------------------------------------------------------- */

int yr_gemini_build(yr_call_ctx_t *cx, yr_str_t raw, yr_buf_t *body_buf, yr_upstream_req_t *out,
                    const char **path, const char *const **extra)
{
    (void)raw; /* the parsed request (cx->chat->root) is what gets translated */
    const json_t *root = cx->chat->root;
    json_t *req = json_object();
    if (req == NULL)
        return -ENOMEM;
    int rc = check_unsupported(cx, root);
    if (rc == 0)
        rc = convert_messages(cx, root, req);
    if (rc == 0)
        rc = put_tools(cx, root, req);
    if (rc == 0)
        rc = put_generation_config(cx, root, req);
    if (rc == 0)
        rc = yr_tr_dump(req, body_buf);
    json_decref(req);
    if (rc < 0)
        return rc;
    out->body = body_buf->data;
    out->body_len = body_buf->len;
    *path = yr_gemini_path(cx->pool, cx->route->model,
                           cx->chat->stream ? "streamGenerateContent?alt=sse" : "generateContent");
    *extra = NULL;
    return *path ? 0 : -ENOMEM;
}
