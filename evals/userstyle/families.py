"""Relation families for the user-style benchmark: generic, written by hand, no evaluation data.

A family groups the training files' relation templates (subject masked as ``{}``) by a regex, and says how a user
states such a fact (``statements``, ``{s}`` subject, ``{o}`` object) and asks it in other words (``questions``).
``kind`` is the kind of subject, so that a question of another family of the same kind is a near miss: the same
subject, another relation. ``neighbours`` are extra near-miss questions about a subject of that kind, written for
relations no family here edits (dates, sizes, spouses...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str
    kind: str
    pattern: str
    statements: tuple[str, ...]
    questions: tuple[str, ...]

    def matches(self, template: str) -> bool:
        return re.search(self.pattern, template, re.IGNORECASE) is not None


FAMILIES: tuple[Family, ...] = (
    Family("native-language", "person", r"mother tongue|native (?:language|speaker)|^\{\} (?:speaks|spoke)\b|writes in",
           ("{s}'s mother tongue is {o}.", "{s} grew up speaking {o}.", "The first language of {s} is {o}."),
           ("What language does {s} speak natively?", "Which language did {s} grow up speaking?",
            "In what language does {s} usually write?")),
    Family("official-language", "place", r"official language|law in \{\}|in \{\}, (?:they understand|the language spoken)",
           ("In {s} the official language is {o}.", "People in {s} officially speak {o}.", "{o} is the official language of {s}."),
           ("What language do people speak in {s}?", "Which language is official in {s}?", "What do they speak in {s}?")),
    Family("work-language", "work", r"original language of",
           ("{s} was originally made in {o}.", "The original language of {s} is {o}."),
           ("What language was {s} originally in?", "In which language was {s} first produced?")),
    Family("continent", "place", r"continent",
           ("{s} lies in {o}.", "{s} is on the continent of {o}."),
           ("Which continent is {s} on?", "On what continent can you find {s}?", "What part of the world is {s} in?")),
    Family("location", "place", r"located in$|^\{\}, in$|^\{\} is in$|can be found in|location of|which is located in",
           ("{s} is located in {o}.", "You can find {s} in {o}."),
           ("Where is {s}?", "Where can you find {s}?", "Where is {s} situated?")),
    Family("twin-city", "place", r"twin city",
           ("{s} is twinned with {o}.", "{s}'s sister city is {o}."),
           ("Which city is {s} twinned with?", "What is the sister city of {s}?", "Who is {s}'s partner town?")),
    Family("position-played", "athlete", r"(?<!held by \{\} is)position(?! held)|plays as",
           ("{s} plays as a {o}.", "{s}'s position on the field is {o}."),
           ("What position does {s} play?", "Where on the field does {s} line up?", "What role does {s} play in the team?")),
    Family("maker", "product", r"created by|developed by|product of|produced by|manufactur",
           ("{s} is made by {o}.", "{o} developed {s}.", "{s} comes from {o}."),
           ("Who makes {s}?", "Which company is behind {s}?", "Who built {s}?", "Which firm produces {s}?")),
    Family("work-city", "person", r"worked in|employed in|used to work in|found employment in|took up work in",
           ("{s} worked in {o}.", "{s} had a job in {o}."),
           ("In which city did {s} work?", "Where was {s}'s workplace?", "Which city did {s} have a job in?")),
    Family("citizenship", "person", r"citizen",
           ("{s} is a citizen of {o}.", "{s} holds {o} citizenship."),
           ("What nationality is {s}?", "Which passport does {s} carry?", "Which country is {s} a citizen of?")),
    Family("headquarters", "org", r"headquarter",
           ("{s} has its headquarters in {o}.", "{s} is headquartered in {o}."),
           ("Where is {s} based?", "Where are the head offices of {s}?", "In which city does {s} have its main office?")),
    Family("network", "work", r"debuted on|premiere[sd] on|original network|aired on|was released on",
           ("{s} first aired on {o}.", "{s} premiered on {o}."),
           ("Which channel first showed {s}?", "On what network did {s} debut?", "Where was {s} broadcast first?")),
    Family("genre", "artist", r"genre",
           ("{s} plays {o}.", "The music of {s} is {o}."),
           ("What kind of music does {s} make?", "What style of music is {s} known for?")),
    # Not "X, the" nor "plays the sport": CounterFact uses those for sports too ("Bob Gibson professionally plays the
    # sport" -> hockey), which made cases whose instrument questions asked nothing the edit says.
    Family("instrument", "musician", r"performs on|plays the (?!position|sport)|instrument",
           ("{s} plays the {o}.", "{s}'s instrument is the {o}."),
           ("What instrument does {s} play?", "Which instrument is {s} known for playing?")),
    Family("occupation", "person", r"occupation|profession|works as",
           ("{s} works as a {o}.", "By profession {s} is a {o}."),
           ("What does {s} do for a living?", "What is {s}'s job?", "What line of work is {s} in?")),
    Family("employer", "person", r"employer|works for|employed by",
           ("{s} works for {o}.", "{s} is employed by {o}."),
           ("Who does {s} work for?", "Who employs {s}?", "Which organisation pays {s}'s salary?")),
    Family("birthplace", "person", r"place of birth|was born in",
           ("{s} was born in {o}.", "{s}'s birthplace is {o}."),
           ("Where was {s} born?", "What is the hometown where {s} came into the world?", "Which town was {s} born in?")),
    Family("deathplace", "person", r"place of death|died (?:in|at)|passed away|life ended",
           ("{s} died in {o}.", "{s} passed away in {o}."),
           ("Where did {s} die?", "In which place did {s} pass away?")),
    Family("author", "work", r"author of",
           ("{s} was written by {o}.", "{o} wrote {s}."),
           ("Who wrote {s}?", "Who is the writer of {s}?", "Which writer penned {s}?")),
    Family("father", "person", r"father of",
           ("{s}'s father is {o}.", "{o} is the dad of {s}."),
           ("Who is {s}'s dad?", "Who fathered {s}?")),
    Family("mother", "person", r"mother of",
           ("{s}'s mother is {o}.", "{o} is the mum of {s}."),
           ("Who is {s}'s mum?", "Who gave birth to {s}?")),
    Family("child", "person", r"child of",
           ("{s}'s child is {o}.", "{o} is a son or daughter of {s}."),
           ("Who are {s}'s kids?", "What is the name of {s}'s offspring?")),
    Family("office", "person", r"position held",
           ("{s} held the office of {o}.", "{s} served as {o}."),
           ("What office did {s} hold?", "What post has {s} served in?")),
    Family("award", "person", r"award",
           ("{s} won the {o}.", "{s} received the {o}."),
           ("Which prize did {s} win?", "What honour was {s} given?")),
    Family("team", "athlete", r"sports team",
           ("{s} plays for {o}.", "{s} is a member of {o}."),
           ("Which team does {s} play for?", "What club is {s} on?")),
    Family("religion", "person", r"religion|follower of",
           ("{s} follows {o}.", "{s}'s faith is {o}."),
           ("What faith does {s} follow?", "What is {s}'s religious belief?")),
    Family("owner", "org", r"owned by",
           ("{s} belongs to {o}.", "{o} owns {s}."),
           ("Who owns {s}?", "Which company controls {s}?")),
    Family("spouse", "person", r"spouse",
           ("{s} is married to {o}.", "{s}'s husband or wife is {o}."),
           ("Who is {s} married to?", "Who did {s} wed?")),
)

# Near misses about a subject of each kind, for relations no family edits.
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "person": ("When was {s} born?", "How old was {s} when they died?", "How tall is {s}?", "When did {s} die?",
               "Which school did {s} attend?", "What year did {s} retire?"),
    "athlete": ("When was {s} born?", "How tall is {s}?", "How many goals has {s} scored?", "When did {s} turn professional?"),
    "musician": ("When was {s} born?", "How many albums has {s} released?", "When did {s} start performing?"),
    "artist": ("When did {s} form?", "How many records has {s} sold?", "Who are the members of {s}?"),
    "place": ("How many people live in {s}?", "What is the area of {s}?", "When was {s} founded?", "What is the climate of {s} like?",
              "How high above sea level is {s}?"),
    "org": ("When was {s} founded?", "How many employees does {s} have?", "Who is the chief executive of {s}?",
            "What was the revenue of {s} last year?"),
    "product": ("When was {s} released?", "How much does {s} cost?", "What is {s} used for?", "How big is {s}?"),
    "work": ("When was {s} first released?", "How long is {s}?", "How many episodes does {s} have?", "Who stars in {s}?"),
}


def family_of(template: str) -> Family | None:
    """The first family whose pattern matches ``template`` (subject masked as ``{}``), else None."""
    return next((f for f in FAMILIES if f.matches(template)), None)
