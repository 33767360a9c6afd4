"""LangGraph wiring of the agent."""
