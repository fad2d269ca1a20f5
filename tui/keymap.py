"""Key strings and keymaps, for the app's ``[keymap]`` (tui/app/actions.py) and the
painter's ``paint.*`` entries in it (tui/paint/app.py): one reading of a key string and one set
of rules for rebinding, so the two cannot disagree. Textual only: no segtriage imports.
"""

from __future__ import annotations

from functools import lru_cache

PAINT_PREFIX = "paint."  # the painter's binding ids; the app leaves them to the painter

# Key strings are read the way Textual reads a key event (textual.keys): "mod+mod+key", the
# modifiers Textual reports, in the order it reports them (sorted), a single character turned
# into its key name ("?" is "question_mark"), aliases (ctrl+m is enter) folded into one key.

MODIFIERS = ("alt", "ctrl", "hyper", "meta", "shift", "super")
# keys Textual binds for itself: a binding of ours on them would never run
TEXTUAL_KEYS = {"ctrl+q": "quit", "ctrl+p": "command palette", "ctrl+c": "copy",
                "tab": "focus next", "shift+tab": "focus previous"}


class KeyStringError(ValueError):
    pass


@lru_cache(1)
def _key_names() -> frozenset[str]:
    """Every named key Textual can report (the part after the last '+')."""
    from textual._keyboard_protocol import FUNCTIONAL_KEYS
    from textual.keys import KEY_ALIASES, Keys

    names = {k.value for k in Keys} | set(FUNCTIONAL_KEYS.values())
    names |= set(KEY_ALIASES) | {a for aliases in KEY_ALIASES.values() for a in aliases}
    return frozenset(n.rpartition("+")[2] for n in names if not n.startswith("<"))


def _is_character_name(name: str) -> bool:
    """A name Textual gives a character key ("question_mark", "slash", "comma")."""
    import unicodedata

    from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key

    for guess in (_get_unicode_name_from_key(REPLACED_KEYS.get(name, name)),
                  name.replace("_", " ")):
        try:
            ch = unicodedata.lookup(guess)
        except KeyError:
            continue
        if _character_to_key(ch) == name:
            return True
    return False


def normalize_key(text: str) -> str:
    """One key of a key string as Textual reports it ("?" → "question_mark", "shift+ctrl+up"
    → "ctrl+shift+up", "ctrl+m" → "enter"); KeyStringError says what is wrong with it."""
    from textual.keys import KEY_ALIASES, _character_to_key

    key = text.strip()
    if not key:
        raise KeyStringError("an empty key (a comma too many?)")
    if len(key) == 1:
        return _character_to_key(key)
    *mods, name = key.split("+")
    if not name:
        raise KeyStringError("a modifier with no key" if mods and mods[-1] else
                             'an empty part (the + key is "plus")')
    for m in mods:
        if not m:
            raise KeyStringError('an empty part (the + key is "plus")')
        if m not in MODIFIERS:
            raise KeyStringError(f"unknown modifier {m!r} (one of {', '.join(MODIFIERS)})")
    if len(set(mods)) != len(mods):
        raise KeyStringError("a modifier twice")
    if len(name) == 1:
        name = _character_to_key(name)
    elif name not in _key_names() and not _is_character_name(name):
        raise KeyStringError(f"unknown key name {name!r} (Textual's names such as "
                             "\"enter\", \"f5\", \"pagedown\", \"slash\", \"question_mark\")")
    full = "+".join(sorted(mods) + [name])
    for main, aliases in KEY_ALIASES.items():
        if full in aliases:
            return main
    return full


def _keys(keys: str) -> list[str]:
    return [k.strip() for k in keys.split(",")]



def resolve(keymap: dict[str, str], default_keys: dict[str, str]
            ) -> tuple[dict[str, str], list[str]]:
    """``keymap`` (id → key string, every id one of ``default_keys``) against the default
    keys of one scope (id → key string): the overrides for ``App.set_keymap`` and one message
    per problem. Refused: a malformed key string, a key Textual keeps for itself, a key two
    entries ask for (neither applies), a key that is the only one another id has. A key
    another id has besides others moves: that id keeps the rest."""
    problems: list[str] = []
    defaults = {i: [normalize_key(k) for k in _keys(keys)] for i, keys in default_keys.items()}

    def said(action_id: str) -> str:
        return f'keymap.{action_id} = "{keymap[action_id]}"'

    def keeps(action_id: str) -> str:
        return f"{action_id} keeps {','.join(defaults[action_id])}"

    asked: dict[str, list[str]] = {}
    for action_id, text in keymap.items():
        parts = _keys(text)
        try:
            keys = []
            for part in parts:
                keys.append(normalize_key(part))
        except KeyStringError as e:
            which = f'"{part}": ' if len(parts) > 1 and part else ""
            problems.append(f"{said(action_id)}: {which}{e}; not applied ({keeps(action_id)})")
            continue
        keys = list(dict.fromkeys(keys))
        reserved = [k for k in keys if k in TEXTUAL_KEYS]
        if reserved:
            k = reserved[0]
            problems.append(f"{said(action_id)}: {k} is Textual's own key ({TEXTUAL_KEYS[k]}); "
                            f"not applied ({keeps(action_id)})")
            continue
        asked[action_id] = keys

    # two entries asking for one key: neither applies
    wanted: dict[str, list[str]] = {}
    for action_id, keys in asked.items():
        for k in keys:
            wanted.setdefault(k, []).append(action_id)
    for k, ids in wanted.items():
        ids = [i for i in ids if i in asked]
        if len(ids) > 1:
            both = "both" if len(ids) == 2 else "all"
            problems.append(f"{' and '.join(said(i) for i in ids)}: {both} ask for {k}; "
                            f"{'neither' if len(ids) == 2 else 'none'} applied ("
                            + ", ".join(keeps(i) for i in ids) + ")")
            for i in ids:
                del asked[i]

    # a key another action has by default: taken from it, unless it is the only one it has
    # (each refusal gives an action its default keys back, which may take keys again: repeat)
    while True:
        owner = {k: i for i, keys in asked.items() for k in keys}
        refused = None
        for other, keys in defaults.items():
            if other in asked:
                continue
            lost = [k for k in keys if k in owner]
            if lost and len(lost) == len(keys):
                refused = owner[lost[0]]
                k = lost[0]
                problems.append(f"{said(refused)}: {k} is the only key of {other}; not applied "
                                f"({keeps(refused)}; give {other} another key in [keymap] "
                                "first)")
                break
        if refused is None:
            break
        asked.pop(refused)

    overrides = {i: ",".join(keys) for i, keys in asked.items()}
    owner = {k: i for i, keys in asked.items() for k in keys}
    for other, keys in defaults.items():
        if other in asked:
            continue
        lost = [k for k in keys if k in owner]
        if not lost:
            continue
        left = [k for k in keys if k not in owner]
        overrides[other] = ",".join(left)
        for k in lost:
            problems.append(f"{said(owner[k])}: {k} was {other}'s key; now it runs "
                            f"{owner[k]} and {other} keeps {','.join(left)}")
    return overrides, problems
