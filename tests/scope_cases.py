"""Hand-made CounterFact-shaped training cases shared by the scope-model training tests."""

from __future__ import annotations


def cf_case(prompt: str, subject: str, rephrase: str, locality: str) -> dict[str, str]:
    """One training case: its prompt, subject, paraphrase and a locality prompt (another subject, same relation)."""
    return {"prompt": prompt, "subject": subject, "rephrase_prompt": rephrase, "locality_prompt": locality,
            "target_new": "x", "ground_truth": "y"}


# Alice's locality prompt uses Carol's template and Carol's uses Alice's: one language relation, two templates.
HAND_MADE = [
    cf_case("The mother tongue of Alice Smith is", "Alice Smith", "Alice Smith grew up speaking", "Bob Jones is a native speaker of"),
    cf_case("Carol King is a native speaker of", "Carol King", "Carol King's first language is", "The mother tongue of Dan Brown is"),
    cf_case("Eve Adams was born in", "Eve Adams", "The birthplace of Eve Adams is", "Frank Moore was born in"),
    cf_case("Gina Ray works for", "Gina Ray", "The employer of Gina Ray is", "Hugo Lee works for"),
]
