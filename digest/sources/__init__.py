"""Sources: where papers come from.

One module per kind: ``feed`` (any RSS/Atom feed, arXiv listings included), ``hf_daily``
(the Hugging Face daily papers JSON), and ``fetch`` (HTTP with one shared ``httpx.Client``).
Parsers are pure functions of the response body; fetching is separate, so tests and the
``preview`` command can parse files without any network.
"""
