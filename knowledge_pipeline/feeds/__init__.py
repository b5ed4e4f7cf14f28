"""Feeds as first-class citizens: the feed list, each feed's state and health.

One concept per module:

- ``opml``       the feed list's format (OPML 2.0, options in the ``kp:`` namespace)
- ``feed_list``  the feeds a run reads (FEEDS_FILE merged with RSS_FEEDS), locked edits
- ``state``      the local SQLite file of validators, errors, pauses and history
- ``health``     transient or permanent, back-off, status and staleness
- ``document``   parsing a feed from memory; telling a feed from a web page
- ``slices``     a big feed parsed in slices of entries (memory follows the slice)
- ``discovery``  finding a site's feed (``feeds add``)
- ``download``   reading one feed with conditional GET and the body-hash check
- ``gate``       FEED_CONCURRENCY in all, at most two per host
- ``manage``     what ``python3 -m knowledge_pipeline feeds`` does (list, add, remove...)

The capture itself (entries -> Inbox items) is ``capture/feeds.py``.
Nothing here prints.
"""
