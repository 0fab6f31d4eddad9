// Each page links to the same page in the other language. The English book
// is built into book/ and the Chinese one into book/zh-CN/ (see .ci/run), and
// every chapter is a page at the top of its book, so the same page is
// zh-CN/NAME from an English page and ../NAME from a Chinese one.
(() => {
    const chinese = document.documentElement.lang === 'zh-CN';
    const page = window.location.pathname.split('/').pop() || 'index.html';
    const link = document.createElement('a');
    link.className = 'language-switch';
    link.href = (chinese ? '../' : 'zh-CN/') + page + window.location.hash;
    link.textContent = chinese ? 'English' : '中文';
    link.lang = chinese ? 'en' : 'zh-CN';
    link.title = chinese ? 'Read this page in English' : '阅读本页的中文版';
    const buttons = document.querySelector('.right-buttons');
    if (buttons) {
        buttons.prepend(link);
    }
})();
