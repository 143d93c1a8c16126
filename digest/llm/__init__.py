"""Optional language-model help ([llm], off by default): one-sentence summaries of new papers
and a second opinion on the grouper's weak topic placements, from any OpenAI-compatible chat
endpoint (a local Ollama, llama.cpp or vLLM server, or a hosted service).

The pipeline imports this package only when ``[llm] enabled = true``: with it off, nothing of
it (nor asyncio for it) is loaded and nothing is contacted.

``prompt`` says what is asked and checks what comes back; ``client`` is the HTTP edge;
``ask`` sends batches under the run's deadline; ``assist`` is the pipeline step between
topics and render; ``evaluate`` measures the second opinion on hand labels.
"""

from digest.llm.assist import Assisted, assist, weak_reason

__all__ = ["Assisted", "assist", "weak_reason"]
