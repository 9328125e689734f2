"""The privacy policy and the terms: Markdown files an operator may replace (`legal_dir`),
rendered with this installation's facts (retention, subprocessors, contact)."""

from .documents import LegalFacts, PolicyDocument, load_policy, policy_versions

__all__ = ["LegalFacts", "PolicyDocument", "load_policy", "policy_versions"]
