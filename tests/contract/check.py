#!/usr/bin/env python3
"""Checks a REST API answer against a golden answer: JSON types and key
presence, the way Proxmox VE returns them.

Usage:
    check.py GOLDEN.json ANSWER.json    (ANSWER may be - for stdin)
    check.py --example GOLDEN.json      prints the golden's example answer
    check.py --validate GOLDEN.json...  checks golden files only

Exit status: 0 when the answer conforms; 1 when it does not, with one line
per mismatch on stdout, "PATH: expected WHAT, got WHAT" (PATH like
$.data[2].vmid); 2 when a golden file is malformed or a file is unreadable.
An answer that is not JSON at all is a mismatch (exit 1).

Golden format
-------------
A golden file is an example answer as Proxmox VE returns it, {"data": ...},
with a few "$" directives. Every golden value pins the JSON type of the
answer value at the same place:

  "text"        string            true / false   boolean
  42            integer           null           null
  0.5           number: integer or real (write a real example for "number";
                an integer example pins integer and refuses 0.0 or 1e3)

Objects: every key of the golden object must be in the answer (with a value
that conforms), and the answer may have no other key. Directives, siblings
of the keys they talk about:

  "$optional": ["lock", "tags"]    these keys may be absent; when present
                                   they must conform.
  "$omit_unset": ["lock"]          optional too, and when present must not
                                   carry an unset value ("", 0, false, null,
                                   [] or {}): Proxmox omits unset keys rather
                                   than sending "" or 0.
  "$extra": true                   any other key is allowed (any type);
  "$extra": ["role", "leader"]     ... only these other keys (any type);
  "$extra": {"cairn": "0.1.0"}     ... only these, each optional, typed by
                                   its golden (cairn's additions to a
                                   Proxmox shape).
  "$values": GOLDEN                the object is a map: any other key is
                                   allowed and its value must conform to
                                   GOLDEN (e.g. "errors": {"param": "msg"}).
  "$min_keys": 1                   at least this many keys.
  "$match": "type"                 (array elements) the discriminator, see
  "$match": ["type", "status"]     below.
  "$comment", "$source"            ignored (documentation).

A literal answer key that starts with "$" is written "$$key" in a golden.

Arrays: the golden lists example elements; an empty answer array always
conforms. With one golden element and no "$match", every answer element
must conform to it. Otherwise every golden element names its
discriminator key(s) with "$match", and each answer element is checked
against the FIRST golden element whose discriminator values match: a plain
golden value matches by equality ("type": "qemu"), a typed spec (below)
matches any value that conforms to it (so put the specific elements first,
e.g. a row with "status": "unknown" before one with any status). An answer
element that matches no golden element is a mismatch. The golden `[]`
only accepts an empty array.

Typed specs: an object with "$type" stands for one value, when an example
alone cannot say enough:

  {"$type": "string", "$pattern": "[0-9]+", "$example": "100"}
  {"$type": "integer", "$enum": [0, 1], "$example": 1}
  {"$type": ["string", "integer"], "$example": "2400.000"}
  {"$type": "array", "$items": ["1.00"], "$min": 3, "$max": 3,
   "$example": ["0.10", "0.20", "0.30"]}

"$type" is one of string, integer, number, boolean, null, object, array,
any, or a list of them; "$example" is required and must itself conform;
"$enum" lists the allowed values (type-exact: 1 is not true); "$pattern" is
a Python regular expression the whole string must match; "$items" (a golden
array, as above), "$min" and "$max" (lengths) are for arrays.

Stdlib only, Python 3.7+.
"""

import json
import math
import re
import sys

TYPES = ("string", "integer", "number", "boolean", "null", "object", "array",
         "any")
OBJECT_DIRECTIVES = ("$optional", "$omit_unset", "$extra", "$values",
                     "$min_keys", "$match", "$comment", "$source")
SPEC_DIRECTIVES = ("$type", "$example", "$enum", "$pattern", "$items", "$min",
                   "$max", "$comment")


class GoldenError(Exception):
    """The golden file itself is malformed."""


class JObj(dict):
    """A parsed answer object; remembers keys that appeared twice."""
    dups = ()


def _pairs(pairs):
    obj = JObj()
    dups = []
    for k, v in pairs:
        if k in obj:
            dups.append(k)
        obj[k] = v
    if dups:
        obj.dups = tuple(dups)
    return obj


def _no_constant(name):
    raise ValueError("%s is not JSON" % name)


def parse_answer(text):
    """Parses an answer strictly: NaN/Infinity refused, duplicates kept."""
    return json.loads(text, object_pairs_hook=_pairs,
                      parse_constant=_no_constant)


# ------------------------------------------------------------ helpers


def is_directive(key):
    return key.startswith("$") and not key.startswith("$$")


def answer_key(key):
    return key[1:] if key.startswith("$$") else key


def is_spec(g):
    return isinstance(g, dict) and "$type" in g


def json_type(v):
    """The golden type name of an answer value (reals are "number")."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    raise TypeError("not a JSON value: %r" % (v,))


def has_type(v, t):
    if t == "any":
        return True
    if t == "number":
        return json_type(v) in ("integer", "number")
    return json_type(v) == t


def same_value(a, b):
    """Type-exact equality: 1 != true, 1 != 1.0."""
    return json_type(a) == json_type(b) and a == b


def describe(v, limit=60):
    """How a value reads in a message: its type and a short rendering."""
    if v is None:
        return "null"
    t = json_type(v)
    if t == "number":
        t = "real"
    text = json.dumps(v, ensure_ascii=False, sort_keys=True)
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return "%s %s" % (t, text)


def type_names(t):
    return " or ".join(t) if isinstance(t, list) else t


def golden_type(g):
    """What a golden value pins, as words for a message."""
    if is_spec(g):
        words = type_names(g["$type"])
        if "$enum" in g:
            words += " in " + ", ".join(json.dumps(x) for x in g["$enum"])
        if "$pattern" in g:
            words += " matching /%s/" % g["$pattern"]
        return words
    if isinstance(g, dict):
        return "object"
    if isinstance(g, list):
        return "array"
    if g is None:
        return "null"
    if isinstance(g, float):
        return "number"
    return json_type(g)


def path_key(path, key):
    if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
        return "%s.%s" % (path, key)
    return "%s[%s]" % (path, json.dumps(key))


def is_unset(v):
    """Whether an answer value reads as "not set": "", 0, false, null, []
    or {}."""
    if isinstance(v, bool):
        return v is False
    if isinstance(v, (int, float)):
        return v == 0
    return v is None or v == "" or v == [] or v == {}


def match_keys(g):
    m = g.get("$match") if isinstance(g, dict) else None
    if m is None:
        return []
    return [m] if isinstance(m, str) else list(m)


# ---------------------------------------------------------- validation


def validate(g, path="$", element=False):
    """Raises GoldenError when g is not a well-formed golden (element: g is
    an element of a golden array, where "$match" belongs)."""
    if is_spec(g):
        _validate_spec(g, path)
    elif isinstance(g, dict):
        if "$match" in g and not element:
            raise GoldenError("%s: $match outside an array" % path)
        _validate_object(g, path)
    elif isinstance(g, list):
        _validate_elements(g, path)
    elif isinstance(g, float) and not math.isfinite(g):
        raise GoldenError("%s: not a finite number" % path)


def _string_list(g, key, path):
    v = g[key]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise GoldenError("%s: %s must be a list of key names" % (path, key))
    return v


def _validate_object(g, path):
    keys = [k for k in g if not is_directive(k)]
    for k in g:
        if is_directive(k) and k not in OBJECT_DIRECTIVES:
            raise GoldenError("%s: unknown directive %s" % (path, k))
    for d in ("$optional", "$omit_unset"):
        if d in g:
            for k in _string_list(g, d, path):
                if k not in keys:
                    raise GoldenError("%s: %s names %r, which the golden "
                                      "object does not have" % (path, d, k))
    if "$extra" in g:
        e = g["$extra"]
        if isinstance(e, list):
            _string_list(g, "$extra", path)
            names = e
        elif isinstance(e, dict) and not is_spec(e):
            names = list(e)
            for k, v in e.items():
                if is_directive(k):
                    raise GoldenError("%s: $extra names a directive %s" %
                                      (path, k))
                validate(v, path_key(path, answer_key(k)))
        elif e is not True:
            raise GoldenError("%s: $extra must be true, a list of names or "
                              "an object of goldens" % path)
        else:
            names = []
        for k in names:
            if k in keys:
                raise GoldenError("%s: %r is both a key and an $extra" %
                                  (path, k))
        if "$values" in g:
            raise GoldenError("%s: $extra and $values exclude each other" %
                              path)
    if "$values" in g:
        validate(g["$values"], path + ".*")
    if "$min_keys" in g:
        n = g["$min_keys"]
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise GoldenError("%s: $min_keys must be a count" % path)
    optional = set(g.get("$optional", [])) | set(g.get("$omit_unset", []))
    if "$match" in g:
        m = g["$match"]
        if not (isinstance(m, str) or (isinstance(m, list) and m and all(
                isinstance(x, str) for x in m))):
            raise GoldenError("%s: $match must be a key or a list of keys" %
                              path)
        for k in match_keys(g):
            if k not in keys:
                raise GoldenError("%s: $match key %r is not in the object" %
                                  (path, k))
            if k in optional:
                raise GoldenError("%s: $match key %r cannot be optional" %
                                  (path, k))
    for k in keys:
        validate(g[k], path_key(path, answer_key(k)))


def _validate_elements(elems, path):
    for i, e in enumerate(elems):
        validate(e, "%s[%d]" % (path, i), element=True)
    if len(elems) > 1 or (elems and match_keys(elems[0])):
        for i, e in enumerate(elems):
            if not isinstance(e, dict) or is_spec(e) or not match_keys(e):
                raise GoldenError(
                    "%s[%d]: an array golden with several elements needs "
                    "\"$match\" in each element" % (path, i))


def _validate_spec(g, path):
    for k in g:
        if k not in SPEC_DIRECTIVES:
            raise GoldenError("%s: %r is not allowed in a typed spec" %
                              (path, k))
    t = g["$type"]
    ts = t if isinstance(t, list) else [t]
    if not ts or not all(isinstance(x, str) and x in TYPES for x in ts):
        raise GoldenError("%s: $type must be one of %s (or a list)" %
                          (path, ", ".join(TYPES)))
    if "$example" not in g:
        raise GoldenError("%s: a typed spec needs an $example" % path)
    if "$enum" in g and not (isinstance(g["$enum"], list) and g["$enum"]):
        raise GoldenError("%s: $enum must be a non-empty list" % path)
    if "$pattern" in g:
        if not {"string", "any"} & set(ts):
            raise GoldenError("%s: $pattern is for strings" % path)
        try:
            re.compile(g["$pattern"])
        except (re.error, TypeError) as exc:
            raise GoldenError("%s: bad $pattern: %s" % (path, exc))
    for k in ("$items", "$min", "$max"):
        if k in g and "array" not in ts:
            raise GoldenError("%s: %s is for arrays" % (path, k))
    for k in ("$min", "$max"):
        if k in g and (not isinstance(g[k], int) or isinstance(g[k], bool)
                       or g[k] < 0):
            raise GoldenError("%s: %s must be a count" % (path, k))
    if "$items" in g:
        if not isinstance(g["$items"], list):
            raise GoldenError("%s: $items must be a golden array" % path)
        _validate_elements(g["$items"], path)
    out = []
    _check(g, g["$example"], path + "($example)", out)
    if out:
        raise GoldenError("its $example does not conform: " + out[0])


# -------------------------------------------------------------- checks


def check(golden, answer):
    """The mismatches of answer against golden, as "PATH: expected X, got Y"
    lines (empty when it conforms). The golden must be valid."""
    out = []
    _check(golden, answer, "$", out)
    return out


def _mismatch(out, path, expected, got):
    out.append("%s: expected %s, got %s" % (path, expected, got))


def _check(g, v, path, out):
    if is_spec(g):
        _check_spec(g, v, path, out)
    elif isinstance(g, dict):
        if not isinstance(v, dict):
            _mismatch(out, path, "object", describe(v))
        else:
            _check_object(g, v, path, out)
    elif isinstance(g, list):
        if not isinstance(v, list):
            _mismatch(out, path, "array", describe(v))
        else:
            _check_elements(g, v, path, out)
    else:
        t = golden_type(g)
        if not has_type(v, t):
            _mismatch(out, path, t, describe(v))


def _check_spec(g, v, path, out):
    t = g["$type"]
    ts = t if isinstance(t, list) else [t]
    if not any(has_type(v, x) for x in ts):
        _mismatch(out, path, type_names(t), describe(v))
        return
    if "$enum" in g and not any(same_value(v, x) for x in g["$enum"]):
        _mismatch(out, path, "one of " + ", ".join(
            json.dumps(x) for x in g["$enum"]), describe(v))
    if "$pattern" in g and isinstance(v, str) and \
            re.fullmatch(g["$pattern"], v) is None:
        _mismatch(out, path, "a string matching /%s/" % g["$pattern"],
                  describe(v))
    if isinstance(v, list):
        if "$min" in g and len(v) < g["$min"]:
            _mismatch(out, path, "at least %d elements" % g["$min"],
                      "%d" % len(v))
        if "$max" in g and len(v) > g["$max"]:
            _mismatch(out, path, "at most %d elements" % g["$max"],
                      "%d" % len(v))
        if "$items" in g:
            _check_elements(g["$items"], v, path, out)


def _check_object(g, v, path, out):
    optional = set(g.get("$optional", []))
    omit_unset = set(g.get("$omit_unset", []))
    known = set()
    for gk in g:
        if is_directive(gk):
            continue
        k = answer_key(gk)
        known.add(k)
        p = path_key(path, k)
        if k in v:
            _check(g[gk], v[k], p, out)
            if gk in omit_unset and is_unset(v[k]):
                _mismatch(out, p, "the key absent when unset (Proxmox omits "
                          "it)", describe(v[k]))
        elif gk not in optional and gk not in omit_unset:
            _mismatch(out, p, golden_type(g[gk]) + " (a required key)",
                      "absent")
    extra = g.get("$extra", False)
    for k in v:
        if k in known:
            continue
        p = path_key(path, k)
        if "$values" in g:
            _check(g["$values"], v[k], p, out)
        elif extra is True:
            pass
        elif isinstance(extra, list) and k in extra:
            pass
        elif isinstance(extra, dict) and ("$$" + k if k.startswith("$")
                                          else k) in extra:
            _check(extra["$$" + k if k.startswith("$") else k], v[k], p, out)
        else:
            _mismatch(out, p, "absent (not in the golden)", describe(v[k]))
    for k in getattr(v, "dups", ()):
        _mismatch(out, path_key(path, k), "the key once", "it twice")
    if "$min_keys" in g and len(v) < g["$min_keys"]:
        _mismatch(out, path, "at least %d keys" % g["$min_keys"],
                  "%d" % len(v))


def _matches(g, v):
    """Whether answer element v has g's discriminator values."""
    for k in match_keys(g):
        if k not in v:
            return False
        gv = g[k]
        if is_spec(gv):
            probe = []
            _check_spec(gv, v[k], "$", probe)
            if probe:
                return False
        elif not same_value(gv, v[k]):
            return False
    return True


def _discriminators(elems):
    """The discriminator values of golden elements, for a message."""
    seen = []
    for g in elems:
        parts = []
        for k in match_keys(g):
            gv = g[k]
            parts.append("%s=%s" % (k, "(%s)" % golden_type(gv)
                                    if is_spec(gv) else json.dumps(gv)))
        text = ",".join(parts)
        if text not in seen:
            seen.append(text)
    return "; ".join(seen)


def _check_elements(elems, v, path, out):
    if not elems:
        if v:
            _mismatch(out, path, "an empty array", "%d elements" % len(v))
        return
    keyed = bool(match_keys(elems[0]))
    for i, e in enumerate(v):
        p = "%s[%d]" % (path, i)
        if not keyed:
            _check(elems[0], e, p, out)
            continue
        if not isinstance(e, dict):
            _mismatch(out, p, "object", describe(e))
            continue
        for g in elems:
            if _matches(g, e):
                _check(g, e, p, out)
                break
        else:
            keys = []
            for g in elems:
                for k in match_keys(g):
                    if k not in keys:
                        keys.append(k)
            got = ",".join("%s=%s" % (k, json.dumps(e[k]) if k in e
                                      else "(absent)") for k in keys)
            _mismatch(out, p, "an element like one of: " +
                      _discriminators(elems), got)


# ------------------------------------------------------------- example


def example_of(g):
    """The example answer a golden describes (directives dropped)."""
    if is_spec(g):
        return g["$example"]
    if isinstance(g, dict):
        return {answer_key(k): example_of(x) for k, x in g.items()
                if not is_directive(k)}
    if isinstance(g, list):
        return [example_of(x) for x in g]
    return g


# ---------------------------------------------------------------- main


def load_golden(path):
    with open(path, encoding="utf-8") as f:
        g = json.load(f, parse_constant=_no_constant)
    validate(g)
    return g


def main(argv):
    usage = ("usage: check.py GOLDEN.json ANSWER.json\n"
             "       check.py --example GOLDEN.json\n"
             "       check.py --validate GOLDEN.json...")
    if len(argv) >= 2 and argv[0] == "--validate":
        status = 0
        for p in argv[1:]:
            try:
                load_golden(p)
            except (OSError, ValueError, GoldenError) as exc:
                print("%s: bad golden: %s" % (p, exc), file=sys.stderr)
                status = 2
        return status
    if len(argv) == 2 and argv[0] == "--example":
        try:
            g = load_golden(argv[1])
        except (OSError, ValueError, GoldenError) as exc:
            print("%s: bad golden: %s" % (argv[1], exc), file=sys.stderr)
            return 2
        print(json.dumps(example_of(g), indent=1))
        return 0
    if len(argv) != 2 or argv[0].startswith("-"):
        print(usage, file=sys.stderr)
        return 2
    try:
        g = load_golden(argv[0])
    except (OSError, ValueError, GoldenError) as exc:
        print("%s: bad golden: %s" % (argv[0], exc), file=sys.stderr)
        return 2
    try:
        if argv[1] == "-":
            text = sys.stdin.buffer.read()
        else:
            with open(argv[1], "rb") as f:
                text = f.read()
    except OSError as exc:
        print("%s: %s" % (argv[1], exc), file=sys.stderr)
        return 2
    try:
        answer = parse_answer(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        shown = text[:60].decode("utf-8", "replace")
        print("$: expected JSON, got %s (%r)" % (
            "an empty answer" if not text else "no JSON: %s" % exc, shown))
        return 1
    lines = check(g, answer)
    for line in lines:
        print(line)
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
