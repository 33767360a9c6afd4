"""deltavlm"""
