"""One turn of a conversation, typed end to end.

A question travels as one :class:`~agent.turn.state.TurnState` through the steps in ``agent.turn.nodes``:
``read`` turns the text into a typed ``Request`` (and the DeltaVLM instruction, if any); ``verify`` puts the
verifiers' typed ``Verification`` with per-region change and the pixel size in ``state.facts``; ``perceive`` adds
the model's ``VLMReply``; ``reconcile`` weighs them into the thread's ledger of ``Fact``; ``compose`` writes the
``Answer`` (words from ``agent.answering``); ``export`` writes the files. ``graphs.change_graph`` wires the steps,
its routers reading ``state.request``, and checkpoints the state.
"""
