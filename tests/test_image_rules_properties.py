"""Property tests of pattern precedence (``images:`` rules, ``crgate.image_rules``): rules and references are
generated from the fragments real patterns are made of, and each property is checked against ``fnmatch`` on
the canonical reference or against brute force over many references, not against crgate's own analysis:
the first matching rule judges and rules after it never change that; globs are case-sensitive and ``*``
crosses ``/``; an ``--image-id`` target matches no rule; ``policy validate``'s example references are real
references both globs match, and a rule it calls unreachable never judges any reference."""

from __future__ import annotations

from fnmatch import fnmatchcase

from hypothesis import assume, given
from hypothesis import strategies as st

from crgate.image_rules import canonical_reference, escaping_reference, overlap_warnings, rule_for, shared_reference
from crgate.images import parse_image_ref
from crgate.model import ImageRule

hosts = st.sampled_from(["cr.yandex", "CR.yandex", "cr.yandexcloud.kz"])
registries = st.sampled_from(["crp1", "crpprod", "abc"])
parts = st.sampled_from(["prod", "dev", "api", "web", "app", "a.b", "x-y"])
tags = st.sampled_from(["1.4", "latest", "v2", "Prod", "1"])
digests = st.sampled_from([None, "sha256:" + "a" * 64])


@st.composite
def references(draw) -> str:
    repository = "/".join(draw(st.lists(parts, min_size=1, max_size=3)))
    text = f"{draw(hosts)}/{draw(registries)}/{repository}"
    tag, digest = draw(st.one_of(st.none(), tags)), draw(digests)
    if tag is not None:
        text += f":{tag}"
    if digest is not None:
        text += f"@{digest}"
    return text


fragments = st.sampled_from(
    ["cr.yandex/", "*", "*/", "/", "?", "crp1/", "crpprod/", "prod/", "dev/", "api", ":1.4", ":latest", ":*", "@*",
     "[a-p]", "[!d]", "app", "Prod", "/*"]
)  # fmt: skip
globs = st.lists(fragments, min_size=1, max_size=5).map("".join)
rule_lists = st.lists(st.lists(globs, min_size=1, max_size=3, unique=True), min_size=1, max_size=4)


def rules_of(matches: list[list[str]]) -> list[ImageRule]:
    return [ImageRule(index=i, match=tuple(match), only_fixed=True) for i, match in enumerate(matches)]


@given(rule_lists, references())
def test_the_first_rule_with_a_matching_glob_judges(matches, reference):
    rules = rules_of(matches)
    canonical = canonical_reference(reference)
    assert canonical is not None
    chosen = rule_for(rules, reference)
    matching = [rule for rule in rules if any(fnmatchcase(canonical, glob) for glob in rule.match)]
    assert chosen == (matching[0] if matching else None)


@given(rule_lists, rule_lists, references())
def test_rules_after_the_judging_rule_never_change_the_choice(matches, more, reference):
    rules = rules_of(matches)
    rules.append(ImageRule(index=len(rules), match=("*",)))  # a catch-all last: some rule always judges
    chosen = rule_for(rules, reference)
    assert chosen is not None
    extended = rules + [ImageRule(index=len(rules) + i, match=tuple(m)) for i, m in enumerate(more)]
    assert rule_for(extended, reference) == chosen
    # ... and a rule placed first that matches takes over.
    canonical = canonical_reference(reference)
    assert canonical is not None
    first = ImageRule(index=0, match=(canonical,))
    assert rule_for([first, *rules], reference) == first


@given(references(), references())
def test_a_literal_glob_matches_exactly_its_canonical_reference(reference, other):
    canonical = canonical_reference(reference)
    assert canonical is not None
    rule = ImageRule(index=0, match=(canonical,))
    assert (rule_for([rule], other) is not None) == (canonical_reference(other) == canonical)


@given(references())
def test_globs_are_case_sensitive_and_star_crosses_slashes(reference):
    canonical = canonical_reference(reference)
    assert canonical is not None and canonical == canonical.split("/", 1)[0].lower() + "/" + canonical.split("/", 1)[1]
    host = canonical.split("/", 1)[0]
    assert rule_for([ImageRule(index=0, match=(f"{host}/*",))], reference) is not None  # every repository depth
    upper = canonical.upper()
    assume(upper != canonical)
    assert rule_for([ImageRule(index=0, match=(upper,))], reference) is None


@given(rule_lists)
def test_an_image_id_target_matches_no_rule(matches):
    assert rule_for(rules_of(matches), None) is None


@given(globs, globs, st.lists(references(), min_size=1, max_size=20))
def test_an_overlap_example_is_a_real_reference_both_globs_match_and_no_example_means_none_exists(a, b, refs):
    example = shared_reference(a, b)
    if example is not None:
        assert fnmatchcase(example, a) and fnmatchcase(example, b)
        assert canonical_reference(example) == example  # a reference crgate accepts, in canonical form
        parse_image_ref(example)
    else:
        canon = [canonical_reference(r) for r in refs]
        assert not any(c is not None and fnmatchcase(c, a) and fnmatchcase(c, b) for c in canon)


@given(globs, st.lists(globs, min_size=1, max_size=3), st.lists(references(), min_size=1, max_size=20))
def test_an_escaping_example_escapes_and_a_covered_glob_has_no_reference_of_its_own(glob, earlier, refs):
    example = escaping_reference(glob, earlier)
    if example is not None:
        assert fnmatchcase(example, glob) and not any(fnmatchcase(example, g) for g in earlier)
        assert canonical_reference(example) == example
    else:
        for reference in refs:
            canonical = canonical_reference(reference)
            assert canonical is not None
            if fnmatchcase(canonical, glob):
                assert any(fnmatchcase(canonical, g) for g in earlier)


@given(rule_lists, st.lists(references(), min_size=1, max_size=20))
def test_a_rule_validate_calls_unreachable_never_judges_a_reference(matches, refs):
    rules = rules_of(matches)
    warnings = overlap_warnings(rules, "p.yaml")
    unreachable = {
        rule.index for rule in rules if any(f"image rule {rule.label} is unreachable" in w for w in warnings)
    }
    for reference in refs:
        chosen = rule_for(rules, reference)
        assert chosen is None or chosen.index not in unreachable
