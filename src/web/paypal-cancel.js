// The PayPal cancel landing: the payer turned back at PayPal. The landing itself changes nothing (anyone holding the
// order id can open it); when the payer is signed in in this browser, the cancellation is recorded with their token.
const order = document.currentScript.dataset.order;
const token = sessionStorage.getItem("purserToken");
if (order && token) {
  fetch("/api/v1/payments/paypal/cancel-order", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ orderId: order }),
  }).catch(() => {});
}
