"""The command-line front-end: ``changeagent verify | ask | chat | demo | eval-masks | serve`` (+ plug-ins)."""
