# wsgi_hello.py -- the 5-line WSGI app of tests/bench/gateway.sh (b): run
# by tremolo_wsgi.py nodes and by uWSGI behind nginx, same bytes out.
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"hello, world\n"]
application = app
