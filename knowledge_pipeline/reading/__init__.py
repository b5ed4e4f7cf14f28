"""The reading side: what the commands and the reading page show of the Sources.

``periods`` (``--since 1d``), ``records`` (an item as plain data), ``digest``,
``export`` and ``web`` (the ``serve`` page). Nothing here prints.
"""
