"""In-memory document storage for mongo_responder.py.

Just enough of MongoDB's query and update language for the capture workload:
equality and comparison filters on (dotted) fields, the common update operators
($set, $unset, $inc, $mul, $push with $each, $addToSet, $pull, $setOnInsert,
$min, $max), array filters ($[ident]) and all-positional ($[]), replacements,
upserts. Anything else raises StoreError, which the responder turns into an
error reply (code 2, BadValue), so an unsupported request is visible, not wrong.
"""
import copy
import datetime

from bson import ObjectId
from bson.decimal128 import Decimal128
from bson.int64 import Int64


class StoreError(Exception):
    def __init__(self, msg, code=2, code_name="BadValue"):
        super().__init__(msg)
        self.code, self.code_name = code, code_name


class DuplicateKey(StoreError):
    def __init__(self, ns, _id):
        super().__init__(
            f"E11000 duplicate key error collection: {ns} index: _id_ dup key: {{ _id: {_id!r} }}",
            11000, "DuplicateKey")
        self.key_value = {"_id": _id}


def _num(v):
    if isinstance(v, Decimal128):
        return v.to_decimal()
    return v


def _cmp_ok(a, op, b):
    a, b = _num(a), _num(b)
    try:
        return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]
    except TypeError:
        return False


def _values_at(doc, path):
    """All values reachable at a dotted path (arrays fan out, like MongoDB)."""
    cur = [doc]
    for part in path.split("."):
        nxt = []
        for c in cur:
            if isinstance(c, dict) and part in c:
                nxt.append(c[part])
            elif isinstance(c, list):
                if part.isdigit() and int(part) < len(c):
                    nxt.append(c[int(part)])
                else:
                    nxt.extend(e[part] for e in c if isinstance(e, dict) and part in e)
        cur = nxt
    return cur


def _eq(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    try:
        return _num(a) == _num(b)
    except TypeError:
        return False


def _value_matches(vals, cond):
    """Does one of vals (or an element of an array among them) satisfy cond?"""
    flat = []
    for v in vals:
        flat.append(v)
        if isinstance(v, list):
            flat.extend(v)
    if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
        for op, arg in cond.items():
            if op == "$eq":
                ok = any(_eq(v, arg) for v in flat)
            elif op == "$ne":
                ok = not any(_eq(v, arg) for v in flat)
            elif op in ("$gt", "$gte", "$lt", "$lte"):
                ok = any(_cmp_ok(v, op, arg) for v in flat)
            elif op == "$in":
                ok = any(_eq(v, a) for v in flat for a in arg)
            elif op == "$nin":
                ok = not any(_eq(v, a) for v in flat for a in arg)
            elif op == "$exists":
                ok = bool(vals) == bool(arg)
            else:
                raise StoreError(f"unsupported query operator {op}")
            if not ok:
                return False
        return True
    if not vals:
        return cond is None
    return any(_eq(v, cond) for v in flat)


def matches(doc, flt):
    for key, cond in (flt or {}).items():
        if key == "$and":
            if not all(matches(doc, f) for f in cond):
                return False
        elif key == "$or":
            if not any(matches(doc, f) for f in cond):
                return False
        elif key.startswith("$"):
            raise StoreError(f"unsupported top-level operator {key}")
        elif not _value_matches(_values_at(doc, key), cond):
            return False
    return True


def _targets(doc, path, array_filters, create):
    """Yield (container, key) pairs a dotted update path designates."""
    parts = path.split(".")
    conts = [doc]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        out = []
        for c in conts:
            if part.startswith("$["):
                if not isinstance(c, list):
                    continue
                ident = part[2:-1]
                for idx, elem in enumerate(c):
                    if ident == "" or _elem_matches(elem, ident, array_filters):
                        out.append((c, idx))
            elif isinstance(c, list):
                if not part.isdigit():
                    raise StoreError(f"cannot traverse array with field {part}")
                idx = int(part)
                while create and len(c) <= idx:
                    c.append(None)
                if idx < len(c):
                    out.append((c, idx))
            elif isinstance(c, dict):
                if part not in c and create and not last:
                    c[part] = {}
                if part in c or create:
                    out.append((c, part))
        if last:
            return out
        conts = [c[k] for c, k in out]
    return []


def _elem_matches(elem, ident, array_filters):
    for f in array_filters or []:
        sub = {k[len(ident) + 1:]: v for k, v in f.items() if k.split(".")[0] == ident}
        whole = f.get(ident, None) if ident in f else None
        if ident in f:
            return _value_matches([elem], whole)
        if sub:
            return matches(elem, sub)
    raise StoreError(f"no array filter found for identifier '{ident}'")


def _arith(a, b, op):
    if a is None:
        a = 0
    if isinstance(a, Decimal128) or isinstance(b, Decimal128):
        r = _num(a) + _num(b) if op == "$inc" else _num(a) * _num(b)
        return Decimal128(r)
    r = a + b if op == "$inc" else a * b
    if isinstance(a, Int64) or isinstance(b, Int64):
        r = Int64(r)
    return r


def apply_update(doc, update, array_filters=None, inserting=False):
    """Apply an update document (operators) or a replacement; return the new doc."""
    if not update or not all(k.startswith("$") for k in update):
        if isinstance(update, list):
            raise StoreError("pipeline updates are not supported by this responder")
        new = {"_id": doc["_id"]} if "_id" in doc else {}
        new.update({k: copy.deepcopy(v) for k, v in update.items() if k != "_id"})
        return new
    new = copy.deepcopy(doc)
    for op, fields in update.items():
        if op == "$setOnInsert" and not inserting:
            continue
        for path, arg in fields.items():
            create = op not in ("$unset", "$pull")
            for c, k in _targets(new, path, array_filters, create):
                cur = c[k] if (isinstance(c, list) or k in c) else None
                if op in ("$set", "$setOnInsert"):
                    c[k] = copy.deepcopy(arg)
                elif op == "$unset":
                    if isinstance(c, dict):
                        c.pop(k, None)
                    else:
                        c[k] = None
                elif op in ("$inc", "$mul"):
                    c[k] = _arith(cur, arg, op)
                elif op in ("$min", "$max"):
                    if cur is None or _cmp_ok(arg, "$lt" if op == "$min" else "$gt", cur):
                        c[k] = arg
                elif op in ("$push", "$addToSet"):
                    arr = cur if isinstance(cur, list) else []
                    items = arg["$each"] if isinstance(arg, dict) and "$each" in arg else [arg]
                    for it in items:
                        if op == "$push" or it not in arr:
                            arr.append(copy.deepcopy(it))
                    c[k] = arr
                elif op == "$pull":
                    if isinstance(cur, list):
                        c[k] = [e for e in cur if not _value_matches([e], arg)]
                elif op == "$currentDate":
                    c[k] = datetime.datetime.now(datetime.timezone.utc)
                else:
                    raise StoreError(f"unsupported update operator {op}")
    return new


def equality_fields(flt):
    """Fields an upsert takes from the filter (plain equality only)."""
    out = {}
    for k, v in (flt or {}).items():
        if k.startswith("$"):
            continue
        if isinstance(v, dict) and v and all(x.startswith("$") for x in v):
            if "$eq" in v:
                out[k] = v["$eq"]
            continue
        out[k] = v
    return out


class Store:
    """namespace ('db.coll') -> {repr(_id): doc}, insertion-ordered."""

    def __init__(self):
        self.colls = {}
        self.indexes = {}

    def coll(self, ns, create=True):
        if ns not in self.colls and create:
            self.colls[ns] = {}
            self.indexes[ns] = [{"v": 2, "key": {"_id": 1}, "name": "_id_"}]
        return self.colls.get(ns)

    def insert(self, ns, doc):
        c = self.coll(ns)
        if "_id" not in doc:
            doc = {"_id": ObjectId(), **doc}
        k = repr(doc["_id"])
        if k in c:
            raise DuplicateKey(ns, doc["_id"])
        c[k] = copy.deepcopy(doc)
        return doc

    def find(self, ns, flt, limit=0):
        out = [d for d in (self.coll(ns, False) or {}).values() if matches(d, flt)]
        return out[:limit] if limit else out

    def update(self, ns, flt, upd, multi=False, upsert=False, array_filters=None):
        """Return (n matched, nModified, upserted _id or None, old doc, new doc)."""
        c = self.coll(ns)
        hits = self.find(ns, flt, 0 if multi else 1)
        if not hits:
            if not upsert:
                return 0, 0, None, None, None
            base = equality_fields(flt)
            new = apply_update(base, upd, array_filters, inserting=True)
            if "_id" not in new:
                new = {"_id": base.get("_id", ObjectId()), **new}
            self.insert(ns, new)
            return 1, 0, new["_id"], None, new
        modified, old_first, new_first = 0, None, None
        for d in hits:
            new = apply_update(d, upd, array_filters)
            if new.get("_id") != d["_id"]:
                raise StoreError("Performing an update on the path '_id' would modify the "
                                 "immutable field '_id'", 66, "ImmutableField")
            if new != d:
                modified += 1
                c[repr(d["_id"])] = new
            if old_first is None:
                old_first, new_first = d, new
        return len(hits), modified, None, old_first, new_first

    def delete(self, ns, flt, limit):
        c = self.coll(ns, False) or {}
        hits = self.find(ns, flt, limit)
        for d in hits:
            del c[repr(d["_id"])]
        return len(hits), (hits[0] if hits else None)

    def drop(self, ns):
        self.indexes.pop(ns, None)
        return self.colls.pop(ns, None) is not None
