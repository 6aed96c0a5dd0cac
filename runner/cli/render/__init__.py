"""All of the command line's text: each document the client builds (client/show,
status, cron, listing), as a person reads it; the JSON a script reads is the
document itself."""
