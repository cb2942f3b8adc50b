"""Images the gateway handles itself: the store behind ``/v1/images/files/{id}``
(:mod:`.store`), the URLs it hands out and the hosts it fetches from (:mod:`.urls`),
signing those URLs (:mod:`.signing`), fetching (:mod:`.fetch`) and telling a type from
its bytes (:mod:`.sniff`)."""
