"""Unit tests for outbound.domain.assignment: eligibility, ranking methods and explanations."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outbound.domain.assignment import (
    DEFAULT_CAPACITY,
    DEFAULT_MAX_DECLINES,
    AgentState,
    AssignmentMethod,
    Choice,
    ChoiceReason,
    choose_agent,
    ineligibility,
    validate_max_declines,
)

R = ChoiceReason
M = AssignmentMethod
T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def agent(user_id: str, **changes: object) -> AgentState:
    base = AgentState(user_id, online=True, member=True, capacity=3)
    return replace(base, **changes)  # type: ignore[arg-type]


def reasons(choice: Choice) -> dict[str, R]:
    return {c.user_id: c.reason for c in choice.considered}


def test_defaults() -> None:
    assert DEFAULT_CAPACITY == 3 and DEFAULT_MAX_DECLINES == 3
    state = AgentState("a", online=True, member=True)
    assert state.capacity == 3 and state.free == 3
    assert [m.value for m in M] == ["highest_capacity", "round_robin", "least_active", "manual"]


# --- eligibility ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason", "detail"),
    [
        ({"member": False}, R.NOT_MEMBER, "not a member of the queue"),
        ({"online": False}, R.OFFLINE, "not online and available"),
        ({"declines": 3}, R.DECLINED, "declined this conversation 3 times"),
        ({"declines": 7}, R.DECLINED, "declined this conversation 7 times"),
        ({"skills": frozenset({"sales"})}, R.MISSING_SKILL, "missing skill billing"),
        ({"languages": frozenset({"en", "de-DE"})}, R.LANGUAGE, "does not speak fr-FR"),
        ({"used": 3}, R.AT_CAPACITY, "at capacity (3 of 3 units used, 1 needed)"),
        ({"capacity": 0}, R.AT_CAPACITY, "at capacity (0 of 0 units used, 1 needed)"),
        ({"used": 5}, R.AT_CAPACITY, "at capacity (5 of 3 units used, 1 needed)"),
    ],
)
def test_each_rule_refuses_with_its_reason(
    changes: dict[str, object], reason: R, detail: str
) -> None:
    able = agent("a", skills=frozenset({"Billing"}), languages=frozenset({"fr-CA"}))
    assert ineligibility(able, required_skills={"billing"}, required_language="fr-FR") is None
    refusal = ineligibility(
        replace(able, **changes),  # type: ignore[arg-type]
        required_skills={"billing"},
        required_language="fr-FR",
    )
    assert refusal is not None
    assert (refusal.reason, refusal.detail) == (reason, detail)
    assert not refusal.eligible and not refusal.chosen


def test_the_first_failing_rule_is_reported() -> None:
    hopeless = agent("a", member=False, online=False, declines=9, used=3)
    refusal = ineligibility(hopeless, required_skills={"x"}, required_language="fr")
    assert refusal is not None and refusal.reason is R.NOT_MEMBER
    refusal = ineligibility(replace(hopeless, member=True), required_skills={"x"})
    assert refusal is not None and refusal.reason is R.OFFLINE


def test_several_missing_skills_are_listed_in_order() -> None:
    refusal = ineligibility(agent("a"), required_skills=["VIP", " billing", "vip"])
    assert refusal is not None and refusal.detail == "missing skills billing, vip"


def test_declines_below_the_limit_and_a_single_decline() -> None:
    assert ineligibility(agent("a", declines=2)) is None
    refusal = ineligibility(agent("a", declines=1), max_declines=1)
    assert refusal is not None and refusal.detail == "declined this conversation once"


def test_cost_counts_against_free_units() -> None:
    assert ineligibility(agent("a", used=1), cost=2) is None
    refusal = ineligibility(agent("a", used=2), cost=2)
    assert refusal is not None and refusal.reason is R.AT_CAPACITY


@pytest.mark.parametrize(
    ("spoken", "required", "ok"),
    [
        ({"fr"}, "fr-FR", True),
        ({"fr_ca"}, "fr", True),
        ({"FR-BE"}, "fr-FR", True),
        ({"en", "pt-BR"}, "pt", True),
        (set(), "en", False),
        ({"fur"}, "fr", False),
    ],
)
def test_languages_match_by_language(spoken: set[str], required: str, ok: bool) -> None:
    refusal = ineligibility(agent("a", languages=frozenset(spoken)), required_language=required)
    assert (refusal is None) is ok


def test_max_declines_setting_is_one_to_five() -> None:
    for value in (1, 3, 5):
        assert validate_max_declines(value) == value
    for bad in (0, 6, True, 2.5):
        with pytest.raises(ValueError, match="1 to 5"):
            validate_max_declines(bad)  # type: ignore[arg-type]


# --- highest capacity -------------------------------------------------------------------------


def test_highest_capacity_prefers_most_free_units() -> None:
    choice = choose_agent(
        "highest_capacity",
        [agent("a", used=2), agent("b", used=0), agent("c", used=1, capacity=5)],
    )
    assert choice.agent_id == "c"
    assert [(c.user_id, c.reason, c.detail) for c in choice.considered] == [
        ("c", R.CHOSEN, "most free capacity (4 units)"),
        ("b", R.LOWER_FREE_CAPACITY, "3 free units, fewer than c's 4"),
        ("a", R.LOWER_FREE_CAPACITY, "1 free units, fewer than c's 4"),
    ]


def test_highest_capacity_ties_go_to_the_least_recently_assigned_then_the_id() -> None:
    choice = choose_agent(
        M.HIGHEST_CAPACITY,
        [
            agent("d", last_assigned_at=at(5)),
            agent("c"),
            agent("b", last_assigned_at=at(1)),
            agent("a"),
        ],
    )
    assert choice.agent_id == "a"
    assert [c.user_id for c in choice.considered] == ["a", "c", "b", "d"]
    assert choice.reason_for("c").reason is R.TIE_LOST
    assert choice.reason_for("c").detail == "tie lost to a: same standing, ordered by id"
    assert choice.reason_for("b").detail == (
        "tie lost to a: last assigned 2026-04-01T09:01:00+00:00, after a (never)"
    )


# --- round robin ------------------------------------------------------------------------------


def test_round_robin_takes_the_earliest_last_assignment() -> None:
    choice = choose_agent(
        M.ROUND_ROBIN,
        [
            agent("a", last_assigned_at=at(3), used=0),
            agent("b", last_assigned_at=at(1), used=2),
            agent("c", last_assigned_at=at(2)),
        ],
    )
    assert choice.agent_id == "b"
    assert choice.reason_for("b").detail == "assigned least recently (2026-04-01T09:01:00+00:00)"
    assert choice.reason_for("c").reason is R.ASSIGNED_MORE_RECENTLY
    assert choice.reason_for("a").detail == (
        "last assigned 2026-04-01T09:03:00+00:00, after b (2026-04-01T09:01:00+00:00)"
    )


def test_round_robin_never_assigned_first_then_by_id() -> None:
    choice = choose_agent(
        M.ROUND_ROBIN, [agent("z"), agent("y"), agent("x", last_assigned_at=at(0))]
    )
    assert choice.agent_id == "y"
    assert choice.reason_for("z").reason is R.TIE_LOST
    assert choice.reason_for("x").reason is R.ASSIGNED_MORE_RECENTLY


def test_round_robin_compares_instants_across_zones() -> None:
    paris = datetime(2026, 4, 1, 10, 30, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    choice = choose_agent(
        M.ROUND_ROBIN,
        [agent("a", last_assigned_at=paris), agent("b", last_assigned_at=at(60))],
    )
    assert choice.agent_id == "b"


# --- least active -----------------------------------------------------------------------------


def test_least_active_takes_who_released_capacity_longest_ago() -> None:
    choice = choose_agent(
        M.LEAST_ACTIVE,
        [
            agent("a", last_capacity_release_at=at(10), last_assigned_at=at(0)),
            agent("b", last_capacity_release_at=at(2), last_assigned_at=at(9)),
            agent("c", last_capacity_release_at=at(2), last_assigned_at=at(4)),
        ],
    )
    assert choice.agent_id == "c"
    assert choice.reason_for("c").detail == (
        "released capacity longest ago (2026-04-01T09:02:00+00:00)"
    )
    assert choice.reason_for("b").reason is R.TIE_LOST
    assert choice.reason_for("a").reason is R.RELEASED_MORE_RECENTLY
    never = choose_agent(M.LEAST_ACTIVE, [agent("a", last_capacity_release_at=at(0)), agent("b")])
    assert never.agent_id == "b"


# --- manual, affinity, nobody -----------------------------------------------------------------


def test_manual_never_chooses_but_says_who_could_pick() -> None:
    choice = choose_agent(M.MANUAL, [agent("a"), agent("b", online=False)], affinity_agent_id="a")
    assert choice.agent is None and choice.agent_id is None
    assert reasons(choice) == {"a": R.MANUAL, "b": R.OFFLINE}
    assert choice.reason_for("a").eligible and not choice.reason_for("a").chosen


def test_affinity_wins_when_the_former_agent_can_take_it() -> None:
    choice = choose_agent(
        M.HIGHEST_CAPACITY,
        [agent("a"), agent("former", used=2), agent("off", online=False)],
        affinity_agent_id="former",
    )
    assert choice.agent_id == "former"
    assert reasons(choice) == {"former": R.AFFINITY, "a": R.AFFINITY_ELSEWHERE, "off": R.OFFLINE}
    assert choice.reason_for("former").chosen
    assert choice.reason_for("a").detail == "the customer's former agent former"


@pytest.mark.parametrize(
    "changes",
    [
        {"online": False},
        {"used": 3},
        {"member": False},
        {"declines": 3},
        {"skills": frozenset()},
    ],
)
def test_affinity_never_jumps_the_rules(changes: dict[str, object]) -> None:
    former = replace(agent("former", skills=frozenset({"x"})), **changes)  # type: ignore[arg-type]
    choice = choose_agent(
        M.ROUND_ROBIN,
        [former, agent("b", skills=frozenset({"x"}))],
        required_skills={"x"},
        affinity_agent_id="former",
    )
    assert choice.agent_id == "b"
    assert choice.reason_for("b").reason is R.CHOSEN
    assert not choice.reason_for("former").eligible


def test_affinity_to_someone_not_listed_is_ignored() -> None:
    choice = choose_agent(M.ROUND_ROBIN, [agent("a")], affinity_agent_id="gone")
    assert choice.agent_id == "a" and choice.reason_for("a").reason is R.CHOSEN


def test_nobody_eligible_means_no_choice_with_every_reason() -> None:
    choice = choose_agent(
        M.HIGHEST_CAPACITY,
        [agent("c", used=3), agent("a", online=False), agent("b", member=False)],
    )
    assert choice.agent is None
    assert [(c.user_id, c.reason) for c in choice.considered] == [
        ("a", R.OFFLINE),
        ("b", R.NOT_MEMBER),
        ("c", R.AT_CAPACITY),
    ]
    assert choose_agent(M.ROUND_ROBIN, []) == Choice(None, ())


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="'fastest'"):
        choose_agent("fastest", [agent("a")])
    with pytest.raises(ValueError, match="at least 1 unit"):
        choose_agent(M.ROUND_ROBIN, [agent("a")], cost=0)
    with pytest.raises(ValueError, match="listed once"):
        choose_agent(M.ROUND_ROBIN, [agent("a"), agent("a")])
    with pytest.raises(KeyError):
        choose_agent(M.ROUND_ROBIN, [agent("a")]).reason_for("b")


# --- properties -------------------------------------------------------------------------------

moments = st.none() | st.integers(0, 20).map(at)
agents = st.builds(
    AgentState,
    user_id=st.sampled_from("abcdefgh"),
    online=st.booleans(),
    member=st.booleans(),
    capacity=st.integers(0, 4),
    used=st.integers(0, 5),
    skills=st.frozensets(st.sampled_from(["billing", "vip"])),
    languages=st.frozensets(st.sampled_from(["fr", "en-GB"])),
    last_assigned_at=moments,
    declines=st.integers(0, 4),
    last_capacity_release_at=moments,
)
candidate_lists = st.lists(agents, max_size=8, unique_by=lambda a: a.user_id)


@given(
    method=st.sampled_from(list(M)),
    candidates=candidate_lists,
    skills=st.frozensets(st.sampled_from(["billing", "vip"])),
    language=st.sampled_from([None, "fr", "en"]),
    affinity=st.sampled_from([None, "a", "b"]),
    cost=st.integers(1, 2),
)
def test_choice_is_eligible_explained_for_all_and_independent_of_order(
    method: M,
    candidates: list[AgentState],
    skills: frozenset[str],
    language: str | None,
    affinity: str | None,
    cost: int,
) -> None:
    def decide(order: list[AgentState]) -> Choice:
        return choose_agent(method, order, skills, language, affinity, 3, cost)

    choice = decide(candidates)
    assert sorted(c.user_id for c in choice.considered) == sorted(a.user_id for a in candidates)
    eligible = {
        a.user_id
        for a in candidates
        if a.member and a.online and a.declines < 3 and a.free >= cost
        and skills <= a.skills
        and (language is None or any(tag.split("-")[0] == language for tag in a.languages))
    }  # fmt: skip
    assert {c.user_id for c in choice.considered if c.eligible} == eligible
    assert [c.chosen for c in choice.considered].count(True) == (choice.agent is not None)
    if method is M.MANUAL or not eligible:
        assert choice.agent is None
    else:
        assert choice.agent_id in eligible
        assert choice.considered[0].user_id == choice.agent_id
        if affinity in eligible:
            assert choice.agent_id == affinity
    assert decide(list(reversed(candidates))) == choice


@given(candidates=candidate_lists)
def test_highest_capacity_winner_has_the_most_free_units(candidates: list[AgentState]) -> None:
    choice = choose_agent(M.HIGHEST_CAPACITY, candidates)
    able = [a for a in candidates if ineligibility(a) is None]
    if able:
        assert choice.agent is not None
        assert choice.agent.free == max(a.free for a in able)


@pytest.mark.parametrize("method", [M.ROUND_ROBIN, M.HIGHEST_CAPACITY, M.LEAST_ACTIVE])
def test_assignments_at_the_same_instant_are_told_apart_by_their_count(method: M) -> None:
    # One assignment pass reads the clock once: every assignment it makes has the same time.
    choice = choose_agent(
        method,
        [
            agent("a", last_assigned_at=at(0), assignments_total=2),
            agent("b", last_assigned_at=at(0), assignments_total=1),
        ],
    )
    assert choice.agent_id == "b"
    assert choice.reason_for("a").reason is R.TIE_LOST
    assert choice.reason_for("a").detail == (
        "tie lost to b: last assigned at the same time as b, with 2 assignments to 1"
    )
