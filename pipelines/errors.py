"""The one exception class for a user's mistake."""


class UserError(Exception):
    """A mistake in what the user gave us: a file, a row, a column, a key, a value.

    The command line prints it as one line ``error: <message>`` on stderr and
    exits with status 2, without a traceback. The message names the file, row
    or key that is wrong.
    """
