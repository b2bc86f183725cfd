// A fake of PayPal's JS SDK (https://www.paypal.com/sdk/js), test code only, served by the PayPal fake at /sdk/js.
// It keeps the documented surface the checkout uses: `paypal.Buttons({createOrder, onApprove, onCancel, onError})`
// with `.render(container)` and `.isEligible()`, one button per funding source (PayPal, plus `enable-funding`'s
// Pay Later and Venmo), and `paypal.FUNDING`. Where the real SDK opens PayPal's window, this shows a dialog standing
// for it; approving there approves the order at the fake, as the payer's login and consent would.
(() => {
  const script = new URL(document.currentScript.src);
  const base = script.origin;
  const query = script.searchParams;
  if (!query.get("client-id")) throw new Error("PayPal SDK: client-id is required in the script URL");
  const FUNDING = { PAYPAL: "paypal", PAYLATER: "paylater", VENMO: "venmo" };
  const labels = { paypal: "PayPal", paylater: "Pay Later", venmo: "Venmo" };
  const funding = [FUNDING.PAYPAL, ...(query.get("enable-funding") ?? "").split(",").filter((f) => labels[f])];

  /** PayPal's window: resolves true when the payer approves, false when they close it. */
  function payerWindow(orderID, source) {
    return new Promise((resolve) => {
      const dialog = document.createElement("dialog");
      dialog.setAttribute("aria-label", "PayPal");
      const title = document.createElement("h2");
      title.textContent = `${labels[source]} checkout (PayPal fake)`;
      const text = document.createElement("p");
      text.textContent = `Order ${orderID}: log in and pay with ${labels[source]}.`;
      const pay = document.createElement("button");
      pay.textContent = "Pay now";
      const cancel = document.createElement("button");
      cancel.textContent = "Cancel and return to merchant";
      const close = (approved) => { dialog.close(); dialog.remove(); resolve(approved); };
      pay.onclick = () => close(true);
      cancel.onclick = () => close(false);
      dialog.oncancel = () => close(false);
      dialog.append(title, text, pay, cancel);
      document.body.append(dialog);
      dialog.showModal();
    });
  }

  async function checkout(options, source) {
    let orderID;
    try {
      orderID = await options.createOrder({ paymentSource: source }, {});
      if (!(await payerWindow(orderID, source))) {
        await options.onCancel?.({ orderID });
        return;
      }
      const approved = await fetch(`${base}/checkoutnow/approve?token=${encodeURIComponent(orderID)}&funding=${source}`, { method: "POST" });
      if (!approved.ok) throw new Error(`PayPal did not approve order ${orderID}`);
      await options.onApprove({ orderID, payerID: "FAKEPAYER", paymentSource: source }, {});
    } catch (err) {
      if (options.onError) options.onError(err);
      else throw err;
    }
  }

  function Buttons(options = {}) {
    const sources = options.fundingSource ? [options.fundingSource] : funding;
    return {
      isEligible: () => sources.every((s) => funding.includes(s)),
      render(container) {
        const target = typeof container === "string" ? document.querySelector(container) : container;
        if (!target) return Promise.reject(new Error("PayPal SDK: the container to render into does not exist"));
        for (const source of sources) {
          const button = document.createElement("button");
          button.type = "button";
          button.className = `paypal-button paypal-button-${source}`;
          button.textContent = labels[source];
          button.onclick = () => checkout(options, source);
          target.append(button);
        }
        return Promise.resolve();
      },
    };
  }

  window.paypal = { Buttons, FUNDING, version: "fake" };
})();
