"""The baseline for cold starts: a bare functions-framework function."""

import flask
import functions_framework


@functions_framework.http
def hello(request: flask.Request) -> str:
    return "hello"
