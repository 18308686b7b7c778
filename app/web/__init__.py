"""The agent console and the demand dashboard: HTML pages and static assets served by the app.

The pages are static shells; everything they show comes from the public HTTP API, called by
the browser with the user's own API key. Nothing here reads the database.
"""
