from django.urls import path

from . import views

app_name = "upstream"

urlpatterns = [
    path("", views.InvoiceListView.as_view(), name="invoice-list"),
    path("invoice/<int:pk>/", views.InvoiceDetailView.as_view(), name="invoice-detail"),
    path("invoice/<int:pk>/pdf/", views.invoice_pdf, name="invoice-pdf"),
]
