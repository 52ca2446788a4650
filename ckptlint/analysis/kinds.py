"""What an expression can hold, as `ctx.values.of(expr).kind` says (values.py).

Apart from values.py so that rule modules can name the kinds without importing the value
analysis: the registry imports every rule module, also on a warm run served by the cache."""

MODULE, WRAPPER, STATE_DICT, TENSOR, DICT, LIST, OTHER, LOADED, UNKNOWN = (
    "module", "wrapper", "state_dict", "tensor", "dict", "list", "other", "loaded", "unknown",
)
# kinds that say "this is not a model" (they switch the name heuristic off)
NOT_A_MODEL = frozenset([STATE_DICT, TENSOR, DICT, LIST, OTHER, LOADED])
