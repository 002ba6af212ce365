"""URL configuration of the hello_world project."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("upstream.urls")),
]
