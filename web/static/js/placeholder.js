import { requireSession, signOut } from "./api.js";

const current = requireSession();
if (current) {
  document.getElementById("who").textContent = `${current.user.username} (${current.user.role})`;
  document.getElementById("title").textContent =
    location.pathname === "/clinic" ? "Clinic" : location.pathname === "/me" ? "My care" : "Field medical coordination";
}
document.getElementById("signout").addEventListener("click", signOut);
