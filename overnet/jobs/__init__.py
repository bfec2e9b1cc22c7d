"""The job core every path shares: one item (an image file, image bytes, a video) is
named (``naming``), checked and planned before any compute (``images.plan_image``),
admitted against a memory budget (``budget``), read, upscaled, written atomically or
returned as bytes, and recorded; any exception fails that item alone (``boundary``).

Used by the local batch (``jobs.batch``), videos (``overnet.video.files``), the Ray
actor (``overnet.scaleout.actor``) and the service (``overnet.serve.images``).
"""
