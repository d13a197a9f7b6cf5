"""What an edit asks for (:class:`EditRequest`), checked before any weight is touched, and its token positions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import EditError


@dataclass(frozen=True)
class EditRequest:
    """``template`` is the prompt with the subject replaced by ``{}``; the model should continue it with ``target``."""

    template: str
    subject: str
    target: str
    id: str = ""

    @property
    def prompt(self) -> str:
        return self.template.format(self.subject)

    @classmethod
    def make(cls, prompt: str | None, subject: str | None, target: str | None, *, id: str = "",
             where: str = "the edit") -> "EditRequest":
        """Validate one edit; the error names ``where`` and says what to fix."""
        if not target or not str(target).strip():
            raise EditError(f"target_new is empty for {where}; give the text the model should produce")
        if not subject or not str(subject).strip():
            raise EditError(f"subject is missing for {where}; parametric methods need the subject named in the prompt")
        if not prompt or not str(prompt).strip():
            raise EditError(f"prompt is missing for {where}; parametric methods need a prompt such as "
                            "'The Eiffel Tower is located in'")
        prompt, subject = " ".join(str(prompt).split()), " ".join(str(subject).split())
        if "{}" in prompt:
            template = prompt
        else:
            at = prompt.find(subject)
            if at < 0:
                at = prompt.lower().find(subject.lower())
                if at < 0:
                    raise EditError(f"subject {subject!r} does not occur in the prompt {prompt!r} of {where}; "
                                    "give the subject exactly as the prompt writes it")
                subject = prompt[at:at + len(subject)]
            template = prompt[:at] + "{}" + prompt[at + len(subject):]
        template = template.replace("{", "{{").replace("}", "}}").replace("{{}}", "{}", 1)
        return cls(template=template, subject=subject, target=" ".join(str(target).split()), id=id)

    @classmethod
    def from_record(cls, rec: Any, where: str = "") -> "EditRequest":
        get = rec.get if isinstance(rec, Mapping) else (lambda k: getattr(rec, k, None))
        rid = str(get("id") or "")
        return cls.make(get("prompt"), get("subject"), get("target_new"), id=rid, where=where or f"edit {rid or '?'}")


def as_requests(items: Sequence[EditRequest | Mapping[str, Any] | Any]) -> list[EditRequest]:
    """Requests from requests, records or dicts; the first bad one fails all, naming its index."""
    if not items:
        raise EditError("no edits given")
    return [it if isinstance(it, EditRequest) else EditRequest.from_record(it, where=f"edit #{i}")
            for i, it in enumerate(items)]


def subject_last_index(encode: Any, text_before_subject: str, subject: str) -> int:
    """Index of the subject's last token in a text that starts with ``text_before_subject + subject``."""
    return len(encode(text_before_subject + subject)) - 1
