// The API reference: the vendored Swagger UI rendering the server's own document.
// "Try it out" runs as the signed-in browser (the session cookie), so writes carry the
// header the server's CSRF check asks of cookie-authenticated requests.
/* global SwaggerUIBundle */
window.addEventListener('DOMContentLoaded', () => {
  SwaggerUIBundle({
    url: '/api/openapi.json',
    dom_id: '#reference',
    deepLinking: true,
    requestInterceptor: (request) => {
      request.headers['X-Requested-With'] = 'fetch';
      return request;
    },
  });
});
