"""Bad input the user can fix, as a type: the CLI prints it as one line and exits 2 (scaling/cli.py).

Raised where validation happens, as `ConfigError("field: what is wrong; allowed: what is")`; the field, the
problem and what is allowed are attributes, so callers (the CLI, a notebook, a sweep recording a failed
member) read them without parsing text. A subclass of ValueError: code that caught ValueError still does.
"""


class ConfigError(ValueError):
  def __init__(self, message: str):
    super().__init__(message)
    head, sep, rest = message.partition(": ")
    self.field = head if sep else ""
    self.problem, _, self.allowed = (rest if sep else message).partition("; allowed: ")
