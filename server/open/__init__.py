"""The open-time path: one guarded core (``core``) and thin adapters for every way an email, a
page or an app asks (block images and clicks, newsletter slots, the web view, AMP, the
cross-channel endpoints). Nothing here answers an email client with an error."""
