"""Learned change masks: a change detector the user already has (:mod:`.provider`, configured by its
:mod:`.sidecar`), and the DeltaVLM mask head (:mod:`.deltavlm_head`)."""
