"""The attendant's desk: a page on the facility LAN for the patients the gate sends to the desk.

Each attendant logs in with their own name and password (scrypt hashes in a file,
:mod:`agent.desk.users`); the page lists the referred patients in order and takes
manual entries (ID number and birth date for the chip, or a child without a card),
showing each entry's outcome back.  Every desk action is an event in the durable
queue carrying the attendant's name (:mod:`agent.desk.events`).  The command-line
client (``gate-agent attendant``) stays for scripts and emergencies.
"""
