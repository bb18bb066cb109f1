"""lessonctl: the operator CLI (`python -m lessonctl`), thin over clients/ and domain/."""
