"""Development helpers: the fake Kakao server and the local runner (not deployed)."""
