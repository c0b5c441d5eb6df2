// HTTP/3 speaks swift-http-types' `HTTPRequest`, `HTTPResponse` and `HTTPFields`: a module that
// imports QuiverHTTP3 can name them without importing HTTPTypes itself.
@_exported public import HTTPTypes
